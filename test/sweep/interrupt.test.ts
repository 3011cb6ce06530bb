import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO, cli, readJsonl, seedShapedExperiment, tempDir, tinyZoo, withoutTimings } from './helpers.js';

describe('Ctrl-C during a local run', () => {
  it('stops the workers, records no failure, and the next run resumes to the uninterrupted records', { timeout: 600_000 }, async () => {
    const zoo = await tinyZoo();
    const work = await tempDir('sweep-interrupt');
    const file = path.join(work, 'int.yaml');
    await fs.writeFile(file, seedShapedExperiment('int', { densities: [0.5], seeds: [1], limit: 2 }));
    const ref = await cli(['run', file, '--zoo', zoo, '--reports', path.join(work, 'ref'), '--jobs', '2', '--progress', 'none', '--no-report']);
    expect(ref.exitCode, ref.all).toBe(0);
    const reference = withoutTimings(await readJsonl(path.join(work, 'ref', 'int', 'results.jsonl')));

    const reports = path.join(work, 'interrupted');
    const args = ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'run', file, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--progress', 'lines', '--no-report'];
    // Its own process group, as a terminal's foreground job: Ctrl-C reaches the workers too.
    const child = execa('node', args, { cwd: REPO, reject: false, all: true, detached: true });
    let seen = '';
    child.all!.on('data', (d: Buffer) => (seen += d.toString()));
    const evals = path.join(reports, 'int', 'cache', 'evals');
    for (let i = 0; i < 1200 && (await fs.readdir(evals).catch(() => [])).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    // Ctrl-C twice: the first only starts nothing more (running tasks would finish), the second
    // stops the workers in the middle of their tasks. The second is sent once the first is
    // acknowledged, so the two cannot merge into one pending signal.
    process.kill(-child.pid!, 'SIGINT');
    for (let i = 0; i < 1200 && child.exitCode === null && !/Ctrl-C: starting no new task/.test(seen); i++) await new Promise((r) => setTimeout(r, 10));
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGINT');
    const res = await child;
    expect(res.exitCode, res.all).toBe(130);
    expect(res.all).toMatch(/Ctrl-C again: /);
    expect(res.all).toMatch(/interrupted: workers stopped; run again to resume from the cache/);
    const partial = await readJsonl(path.join(reports, 'int', 'results.jsonl'));
    expect(partial.length).toBeLessThan(reference.length);
    expect(partial.every((r) => r.status === 'ok')).toBe(true);

    const again = await cli(['run', file, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--progress', 'none', '--no-report']);
    expect(again.exitCode, again.all).toBe(0);
    expect(withoutTimings(await readJsonl(path.join(reports, 'int', 'results.jsonl')))).toEqual(reference);
  });
});
