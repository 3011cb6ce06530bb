import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadResults } from '../../src/results/store.js';
import { STAGE_MARKER } from '../../src/sweep/cache.js';
import { REPO, cli, readJsonl, seedShapedExperiment, stageHashes, tempDir, tinyZoo, withoutTimings } from './helpers.js';
import { mulberry32 } from '../../src/util/random.js';

/** The kill moments are random but the same on every run of the test. */
const rng = mulberry32;

/** Processes (workers included) that carry our tag in their environment. */
async function taggedProcesses(tag: string): Promise<number[]> {
  const pids: number[] = [];
  for (const p of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if ((await fs.readFile(`/proc/${p}/environ`, 'utf8')).includes(`MERGELAB_KILL_TEST=${tag}`)) pids.push(Number(p));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

describe('a run killed with SIGKILL resumes to exactly the uninterrupted results', () => {
  let zoo: string;
  let work: string;
  let expFile: string;
  let reference: Array<Record<string, unknown>>;
  let referenceStages: Map<string, string>;

  beforeAll(async () => {
    zoo = await tinyZoo();
    work = await tempDir('sweep-kill');
    expFile = path.join(work, 'killme.yaml');
    await fs.writeFile(expFile, seedShapedExperiment('killme', { densities: [0.3, 0.8], seeds: [1, 2], limit: 2 }));
    // The uninterrupted run keeps every checkpoint: the reference bytes of every stage.
    const r = await cli(['run', expFile, '--zoo', zoo, '--reports', path.join(work, 'ref'), '--jobs', '2', '--keep-models', '--progress', 'none', '--no-report']);
    if (r.exitCode !== 0) throw new Error(r.all);
    reference = await readJsonl(path.join(work, 'ref', 'killme', 'results.jsonl'));
    referenceStages = await stageHashes(path.join(work, 'ref', 'killme', 'cache', 'stages'));
  });

  it('at >= 5 random moments (group kills and parent-only kills), never exposing a partial checkpoint or record', { timeout: 600_000 }, async () => {
    const reports = path.join(work, 'killed');
    const expDir = path.join(reports, 'killme');
    const tag = `t${process.pid}-${Date.now()}`;
    const rand = rng(20261128);
    const moments: string[] = [];
    const recordedAtKill: number[] = [];
    const cachedAtKill: number[] = [];
    const cacheItems = async (): Promise<number> => {
      let n = 0;
      for (const sub of ['diag', 'evals', 'pointdiag']) n += (await fs.readdir(path.join(expDir, 'cache', sub)).catch(() => [])).length;
      return n;
    };
    let kills = 0;
    for (let attempt = 0; kills < 6 && attempt < 24; attempt++) {
      // A random moment in the WORK, not in wall time (this machine's load varies a lot): after a
      // random number of newly finished cache items (0 = during start-up and planning), plus a
      // random delay that lands inside whatever task comes next.
      const waitItems = attempt === 0 ? 0 : 1 + Math.floor(rand() * 4);
      const extraMs = Math.floor(rand() * 1500);
      const before = await cacheItems();
      const child = execa('node', ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--progress', 'none', '--no-report'], {
        cwd: REPO,
        reject: false,
        detached: true,
        env: { MERGELAB_KILL_TEST: tag },
      });
      let exited = false;
      void child.then(() => (exited = true));
      while (!exited && (await cacheItems()) < before + waitItems) await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, extraMs));
      const finishedFirst = async (): Promise<void> => {
        // The work ran out before this kill (on a quiet machine the sweep is quick): that finished
        // run must equal the reference; then the sweep starts over so the next kills land mid-run.
        const done = await readJsonl(path.join(expDir, 'results.jsonl'));
        expect(withoutTimings(done)).toEqual(withoutTimings(reference));
        await fs.rm(reports, { recursive: true, force: true });
      };
      if (exited) {
        await finishedFirst();
        continue;
      }
      const delay = `${waitItems} items + ${extraMs} ms`;
      // Alternate: the whole process group (parent and workers at once), or the parent alone
      // (its workers are orphaned mid-task and must exit by themselves without harm).
      try {
        if (kills % 2 === 0) process.kill(-child.pid!, 'SIGKILL');
        else process.kill(child.pid!, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
      const res = await child;
      if (res.signal !== 'SIGKILL' && res.exitCode === 0) {
        // It finished in the moment between the check above and the kill.
        await finishedFirst();
        continue;
      }
      expect(res.signal).toBe('SIGKILL');
      kills++;
      moments.push(delay);

      // Whatever is in the cache under a final name is complete and byte-identical to the reference.
      const stagesDir = path.join(expDir, 'cache', 'stages');
      for (const [key, hash] of await stageHashes(stagesDir)) {
        expect(referenceStages.has(key), `unexpected stage ${key}`).toBe(true);
        await fs.access(path.join(stagesDir, key, STAGE_MARKER));
        expect(hash, `stage ${key} differs from the uninterrupted run's`).toBe(referenceStages.get(key));
      }
      // Every whole line of the store is a correct record (a torn last line is dropped on load).
      const { records } = await loadResults(path.join(expDir, 'results.jsonl'), { repair: false });
      const byPoint = new Map(withoutTimings(reference).map((r) => [r.point as string, r]));
      for (const r of withoutTimings(records as unknown as Array<Record<string, unknown>>)) expect(r).toEqual(byPoint.get(r.point as string));
      recordedAtKill.push(records.length);
      cachedAtKill.push(await cacheItems());
    }
    expect(kills).toBeGreaterThanOrEqual(5);
    // The kills landed mid-sweep (finished work in the cache, more to do), not only before or after it.
    const totalItems = (await fs.readdir(path.join(work, 'ref', 'killme', 'cache', 'diag'))).length + (await fs.readdir(path.join(work, 'ref', 'killme', 'cache', 'evals'))).length + (await fs.readdir(path.join(work, 'ref', 'killme', 'cache', 'pointdiag'))).length;
    const info = `kill moments (new cache items + delay): ${moments.join('; ')}; cached results at each kill: ${cachedAtKill.join(', ')} of ${totalItems}; records: ${recordedAtKill.join(', ')}`;
    expect(cachedAtKill.some((n) => n > 0 && n < totalItems), info).toBe(true);
    console.log(info);

    const final = await cli(['run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--progress', 'none', '--no-report']);
    expect(final.exitCode, final.all).toBe(0);
    const resumed = await readJsonl(path.join(expDir, 'results.jsonl'));
    expect(withoutTimings(resumed)).toEqual(withoutTimings(reference));
    // No partial work left behind, and no orphaned worker outlives its task.
    expect(await fs.readdir(path.join(expDir, 'cache', 'stages'))).toEqual([]);
    for (let i = 0; i < 50 && (await taggedProcesses(tag)).length > 0; i++) await new Promise((r) => setTimeout(r, 200));
    expect(await taggedProcesses(tag)).toEqual([]);
  });
});
