import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, readJsonl, tempDir, tinyZoo, withoutTimings } from './helpers.js';

/**
 * What interrupted runs leave behind is cleared at the next start (only what belongs to dead
 * processes), and a run whose plan fails leaves nothing at all.
 */

const experiment = (name: string, weight: string) => `name: ${name}
models: {base: zoo:base, math: zoo:math, chat: zoo:chat}
eval: {suites: [lm], limit: 1}
recipe: |
  merge_method: ties
  base_model: \${base}
  models:
    - model: \${math}
      parameters: {weight: ${weight}, density: 0.5}
    - model: \${chat}
      parameters: {weight: 1, density: 0.5}
`;

/** The id of a process that has ended. */
async function deadPid(): Promise<number> {
  const p = execa('true');
  const pid = p.pid!;
  await p;
  return pid;
}

describe('leftovers', () => {
  let zoo: string;
  let work: string;

  beforeAll(async () => {
    zoo = await tinyZoo();
    work = await tempDir('leftovers');
  });

  it('a plan with problems creates no reports/NAME folder', { timeout: 120_000 }, async () => {
    const file = path.join(work, 'bad.yaml');
    await fs.writeFile(file, experiment('bad', 'abc'));
    const reports = path.join(work, 'reports-bad');
    const r = await cli(['run', file, '--zoo', zoo, '--reports', reports, '--progress', 'none', '--no-report']);
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toMatch(/parameter 'weight' must be a finite number, got "abc"/);
    await expect(fs.access(reports)).rejects.toThrow();
  });

  it('temporary files of dead processes are removed at the next start; a live process keeps its own', { timeout: 300_000 }, async () => {
    const file = path.join(work, 'ok.yaml');
    await fs.writeFile(file, experiment('ok', '1'));
    const reports = path.join(work, 'reports');
    const expDir = path.join(reports, 'ok');
    const run = () => cli(['run', file, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--progress', 'none', '--no-report']);
    const first = await run();
    expect(first.exitCode, first.all).toBe(0);
    const records = await readJsonl(path.join(expDir, 'results.jsonl'));

    const dead = await deadPid();
    const evalName = (await fs.readdir(path.join(expDir, 'cache', 'evals')))[0];
    const garbage = [
      path.join(expDir, `.results.json.tmp-${dead}-0123abcd`),
      path.join(expDir, `.results.jsonl.tmp-${dead}-0123abce`),
      path.join(expDir, `.charts.tmp-${dead}-0123abcf`),
      path.join(expDir, 'cache', `.hashes.json.tmp-${dead}-0123abd0`),
      path.join(expDir, 'cache', 'evals', `.${evalName}.tmp-${dead}-0123abd1`),
      path.join(expDir, 'cache', 'tmp', `merge-0123456789abcdef01234567-${dead}-0123abd2`),
      path.join(expDir, 'cache', 'tmp', `.merge-0123456789abcdef01234567-${dead}-0123abd2.tmp-${dead}-0123abd3`),
    ];
    const mine = [path.join(expDir, `.results.csv.tmp-${process.pid}-0123abd4`), path.join(expDir, 'cache', 'tmp', `merge-0123456789abcdef01234567-${process.pid}-0123abd5`)];
    for (const g of [...garbage, ...mine]) {
      await fs.mkdir(path.dirname(g), { recursive: true });
      if (g.includes('merge-') || g.includes('charts')) {
        await fs.mkdir(g);
        await fs.writeFile(path.join(g, 'model.safetensors.partial'), 'half');
      } else await fs.writeFile(g, '{"half":');
    }

    const second = await run();
    expect(second.exitCode, second.all).toBe(0);
    expect(second.all).toMatch(new RegExp(`removed ${garbage.length} temporary files left by interrupted runs`));
    expect(second.all).toMatch(/merges performed: 0\b/);
    for (const g of garbage) await expect(fs.access(g), g).rejects.toThrow();
    for (const m of mine) await fs.access(m);
    expect(withoutTimings(await readJsonl(path.join(expDir, 'results.jsonl')))).toEqual(withoutTimings(records));
  });
});
