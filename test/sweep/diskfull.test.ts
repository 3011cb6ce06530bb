import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCheckpoint } from '../../src/checkpoint/manifest.js';
import { writeExports } from '../../src/results/export.js';
import { appendResult } from '../../src/results/store.js';
import type { ResultRecord } from '../../src/results/record.js';
import { tinyLlamaShapes, writeTinyLlama } from '../merge/tiny-llama.js';
import { REPO, cli, readJsonl, seedShapedExperiment, tempDir, tinyZoo, withoutTimings } from './helpers.js';

/** The CLI told by the test hook that the disk has plenty of room, so it meets the full disk mid-work. */
function cliFooled(args: string[]) {
  return execa('node', ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), ...args], { cwd: REPO, reject: false, all: true, env: { MERGELAB_TEST_FREE_BYTES: String(1e12) } });
}

/**
 * A full disk, on a small tmpfs the test mounts (root only; skipped with the reason elsewhere):
 * the pre-flight check refuses what cannot fit; a disk that fills up during the work gives one
 * line naming the path and the space needed, leaves nothing half-written, and once space is freed
 * the same command succeeds.
 */

const work = await tempDir('diskfull');
const mnt = path.join(work, 'small');
await fs.mkdir(mnt);
const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { reject: false });
const skipReason = mounted.exitCode === 0 ? null : `cannot mount a tmpfs here (${(mounted.stderr || mounted.stdout || 'mount failed').trim()}); run the tests as root to cover a full disk`;
if (skipReason) console.warn(`test/sweep/diskfull.test.ts skipped: ${skipReason}`);

/** Set the small filesystem's size; `fresh` empties it first (of what an earlier test left). */
async function resize(size: string, opts: { fresh: boolean }): Promise<void> {
  if (opts.fresh) for (const e of await fs.readdir(mnt)) await fs.rm(path.join(mnt, e), { recursive: true, force: true });
  await execa('mount', ['-o', `remount,size=${size}`, mnt]);
}

/** A size as fmtBytes prints it. */
const SIZE = '\\d+(\\.\\d)? (B|KiB|MiB|GiB)';

/** Every name under `dir`, recursively. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    out.push(path.join(dir, e.name));
    if (e.isDirectory()) out.push(...(await tree(path.join(dir, e.name))));
  }
  return out;
}

const noTemps = async (dir: string) => (await tree(dir)).filter((p) => /\.tmp-\d+-[0-9a-f]{8}|\/cache\/tmp\/./.test(p));

afterAll(async () => {
  if (!skipReason) await execa('umount', [mnt], { reject: false });
  await fs.rm(work, { recursive: true, force: true });
});

describe.skipIf(skipReason !== null)('a full disk', () => {
  let models: string;
  let recipe: string;

  beforeAll(async () => {
    // ~2.9 MB of float32 weights: more than the 1 MiB filesystem holds.
    models = path.join(work, 'models');
    const shapes = tinyLlamaShapes({ hidden: 128, inter: 640, vocab: 600, kv: 32 });
    await writeTinyLlama(path.join(models, 'base'), { seed: 1, shapes });
    await writeTinyLlama(path.join(models, 'math'), { seed: 2, baseSeed: 1, shapes });
    recipe = path.join(work, 'ta.yaml');
    await fs.writeFile(recipe, `merge_method: task_arithmetic\nbase_model: ${path.join(models, 'base')}\nmodels:\n  - model: ${path.join(models, 'math')}\n    parameters: {weight: 0.5}\ndtype: float32\n`);
  });

  it('merge: refused before any work when the output cannot fit; a disk filling up mid-write is one line, nothing left; after freeing space it succeeds', { timeout: 300_000 }, async () => {
    await resize('1m', { fresh: true });
    const out = path.join(mnt, 'merged');
    const pre = await cli(['merge', recipe, '--out', out]);
    expect(pre.exitCode, pre.all).toBe(1);
    expect(pre.all).toMatch(new RegExp(`^mergelab: ${mnt}: not enough free disk space: the merge \\(1 stage, --out ${out}\\) needs about 2\\.\\d MiB, 1\\.0 MiB free there; free some space or write elsewhere$`, 'm'));
    expect(await fs.readdir(mnt)).toEqual([]);

    // The pre-flight check told that there is room: the writer meets the full disk.
    const mid = await cliFooled(['merge', recipe, '--out', out]);
    expect(mid.exitCode, mid.all).toBe(1);
    const lines = (mid.all ?? '').trim().split('\n').filter((l) => l.startsWith('mergelab: '));
    expect(lines, mid.all).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^mergelab: ${out}: out of disk space \\(needs about 2\\.\\d MiB, ${SIZE} free there\\); free some space and run again$`));
    expect(mid.all).not.toMatch(/\n\s+at |ENOSPC/);
    expect(await fs.readdir(mnt)).toEqual([]);

    await resize('8m', { fresh: false });
    const ok = await cli(['merge', recipe, '--out', out]);
    expect(ok.exitCode, ok.all).toBe(0);
    expect(await checkCheckpoint(out, { full: true })).toBeNull();
    await fs.rm(out, { recursive: true });
  });

  it('exports and results: one error naming the file and its size, no temporary file, no partial line', async () => {
    await resize('1m', { fresh: true });
    const dir = path.join(mnt, 'exp');
    await fs.mkdir(dir);
    const record: ResultRecord = { experiment: 'x', point: 'p', role: 'merge', variant: 'v', axes: {}, seed: null, recipe: 'r'.repeat(200_000), backend: 'typed', engineVersion: '0', status: 'ok', metrics: {}, timings: {}, diagnostics: [], samples: [] };
    await appendResult(path.join(dir, 'results.jsonl'), { ...record, recipe: 'small' });
    const before = await fs.readFile(path.join(dir, 'results.jsonl'));
    // Fill the filesystem but for 100 KiB.
    const st = await fs.statfs(mnt);
    await fs.writeFile(path.join(mnt, 'filler'), Buffer.alloc(st.bavail * st.bsize - 100 * 1024));
    const appendErr = await appendResult(path.join(dir, 'results.jsonl'), record).then(() => null, (e: Error) => e.message);
    expect(appendErr).toMatch(new RegExp(`^${dir}/results\\.jsonl: out of disk space \\(needs about 19\\d KiB, ${SIZE} free there\\)`));
    expect(await fs.readFile(path.join(dir, 'results.jsonl'))).toEqual(before);
    const exportErr = await writeExports([record, { ...record, point: 'q' }], dir).then(() => null, (e: Error) => e.message);
    // The CSV (no recipe column) fits; the JSON does not.
    expect(exportErr).toMatch(new RegExp(`^${dir}/results\\.json: out of disk space \\(needs about ${SIZE}, ${SIZE} free there\\); free some space and run again$`));
    expect((await fs.readdir(dir)).sort()).toEqual(['results.csv', 'results.jsonl']);
    await fs.rm(path.join(mnt, 'filler'));
    await writeExports([record], dir);
    expect((await fs.readdir(dir)).sort()).toEqual(['results.csv', 'results.json', 'results.jsonl', 'results.xxh64']);
    await fs.rm(dir, { recursive: true });
  });

  it('run: refused up front when the estimate does not fit; stopped with one line when the disk fills mid-run; resumed to the uninterrupted records once space is freed', { timeout: 900_000 }, async () => {
    const zoo = await tinyZoo();
    const expFile = path.join(work, 'full.yaml');
    await fs.writeFile(expFile, seedShapedExperiment('full', { densities: [0.5], seeds: [1], limit: 2 }));
    const reference = path.join(work, 'ref');
    const ref = await cli(['run', expFile, '--zoo', zoo, '--reports', reference, '--jobs', '1', '--progress', 'none', '--no-report']);
    expect(ref.exitCode, ref.all).toBe(0);

    const reports = path.join(mnt, 'reports');
    await resize('64k', { fresh: true });
    const pre = await cli(['run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--keep-models', '--progress', 'none', '--no-report']);
    expect(pre.exitCode, pre.all).toBe(1);
    expect(pre.all).toMatch(new RegExp(`^mergelab: ${reports}/full: not enough free disk space: the run needs about \\d+ KiB at most at once \\(6 merges x ~\\d+ KiB, all kept\\), \\d+ KiB free there; free some space, drop --keep-models or use another --reports folder$`, 'm'));

    // Room for a few checkpoints, not for the whole run; the pre-flight check is told there is plenty.
    await resize('400k', { fresh: true });
    const mid = await cliFooled(['run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--keep-models', '--progress', 'none', '--no-report']);
    expect(mid.exitCode, mid.all).toBe(1);
    const err = (mid.all ?? '').split('\n').filter((l) => l.startsWith('mergelab: '));
    expect(err, mid.all).toHaveLength(1);
    expect(err[0]).toMatch(/^mergelab: .*\/full\/.*: out of disk space \(needs about \d+(\.\d)? KiB, \d+(\.\d)? KiB free there\); free some space and run again/);
    expect(mid.all).not.toMatch(/\n\s+at |ENOSPC/);
    expect(await noTemps(reports)).toEqual([]);

    await resize('16m', { fresh: false });
    const again = await cli(['run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--keep-models', '--progress', 'none', '--no-report']);
    expect(again.exitCode, again.all).toBe(0);
    // What the full disk interrupted was whole: nothing to repair.
    expect(again.all).not.toMatch(/damaged|no checksum/);
    expect(withoutTimings(await readJsonl(path.join(reports, 'full', 'results.jsonl')))).toEqual(withoutTimings(await readJsonl(path.join(reference, 'full', 'results.jsonl'))));
    expect(await noTemps(reports)).toEqual([]);
  });
});
