import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { acquireLock, lockHolder } from '../../src/sweep/lock.js';
import { REPO, seedShapedExperiment, tempDir, tinyZoo } from './helpers.js';

/**
 * Killing the launcher of a run stops the runner and its workers within a few seconds, as /proc
 * shows, and the next run is not refused. `npm run mergelab` outlives nothing: the runner below it
 * notices, stops and releases the lock. `bin/mergelab.js` runs the built CLI in its own process, so
 * killing it kills the runner itself: its workers leave, and its lock is stale (taken over).
 */

/** Live processes (not zombies) carrying our tag in their environment, with their command lines. */
async function tagged(tag: string): Promise<Array<{ pid: number; cmd: string }>> {
  const out: Array<{ pid: number; cmd: string }> = [];
  for (const p of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (!(await fs.readFile(`/proc/${p}/environ`, 'utf8')).includes(`MERGELAB_LAUNCH_TEST=${tag}`)) continue;
      const stat = await fs.readFile(`/proc/${p}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      out.push({ pid: Number(p), cmd: (await fs.readFile(`/proc/${p}/cmdline`, 'utf8')).replace(/\0/g, ' ').trim() });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

const procfs = await fs.access('/proc/self/stat').then(
  () => true,
  () => false,
);

describe.skipIf(!procfs)('the launcher of a run is killed', () => {
  let zoo: string;
  let work: string;
  let expFile: string;

  beforeAll(async () => {
    zoo = await tinyZoo();
    work = await tempDir('launcher');
    expFile = path.join(work, 'orphan.yaml');
    await fs.writeFile(expFile, seedShapedExperiment('orphan', { densities: [0.3, 0.8], seeds: [1, 2], limit: 3 }));
  });

  for (const launcher of ['bin/mergelab.js', 'npm run mergelab'] as const) {
    it(`SIGKILL to ${launcher} stops the runner and its workers within seconds and frees the lock`, { timeout: 300_000 }, async () => {
      const tag = `t${process.pid}-${Date.now()}`;
      const reports = path.join(work, launcher.replace(/\W+/g, '-'));
      const args = ['run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--progress', 'none', '--no-report'];
      const [cmd, ...pre] = launcher === 'bin/mergelab.js' ? ['node', path.join(REPO, 'bin/mergelab.js')] : ['npm', 'run', '--silent', 'mergelab', '--'];
      // Its own process group, as a shell would start it; only the launcher is killed.
      const child = execa(cmd, [...pre, ...args], { cwd: REPO, detached: true, reject: false, env: { MERGELAB_LAUNCH_TEST: tag } });
      let exited = false;
      void child.then(() => (exited = true));
      // Wait for the workers: then runner, workers and the launcher's helpers are all running.
      const t0 = Date.now();
      // Workers are worker.js under the built CLI (dist/), worker.ts under tsx.
      const isWorker = (p: { cmd: string }) => /\bworker\.(ts|js)\b/.test(p.cmd);
      while (!exited && Date.now() - t0 < 240_000 && (await tagged(tag)).filter(isWorker).length < 2) await new Promise((r) => setTimeout(r, 200));
      const before = await tagged(tag);
      expect(before.filter(isWorker).length, `processes: ${before.map((p) => p.cmd).join('\n')}`).toBe(2);
      expect(before.some((p) => p.cmd.includes('bin/mergelab.js run'))).toBe(true);

      process.kill(child.pid!, 'SIGKILL');
      const killedAt = Date.now();
      await child;
      let left = await tagged(tag);
      while (left.length > 0 && Date.now() - killedAt < 30_000) {
        await new Promise((r) => setTimeout(r, 100));
        left = await tagged(tag);
      }
      const seconds = (Date.now() - killedAt) / 1000;
      expect(left.map((p) => p.cmd), `still running ${seconds.toFixed(1)} s after the kill`).toEqual([]);
      expect(seconds).toBeLessThan(10);
      console.log(`${launcher}: ${before.length} processes (${before.map((p) => path.basename(p.cmd.split(' ').find((w) => /\.(ts|js)$|^npm|tsx/.test(w)) ?? p.cmd)).join(', ')}) gone ${seconds.toFixed(1)} s after SIGKILL`);
      const expDir = path.join(reports, 'orphan');
      expect(await lockHolder(expDir)).toBeNull();
      if (launcher === 'bin/mergelab.js') {
        // The runner itself was killed: nobody could remove its lock, but the next run takes it over.
        const release = await acquireLock(expDir);
        await release();
      } else {
        // The runner saw its launcher die, stopped and released the lock.
        await expect(fs.access(path.join(expDir, '.run.lock'))).rejects.toThrow();
        expect(await fs.readFile(path.join(expDir, 'run.log'), 'utf8')).toMatch(/stopping: process \d+, which started this run, has ended/);
      }
    });
  }
});
