import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';

/**
 * One run of an experiment at a time: `reports/EXP/.run.lock` holds the running process's id. A
 * lock whose process is gone (killed, crashed) is stale and taken over.
 */

export function lockFile(expDir: string): string {
  return path.join(expDir, '.run.lock');
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process holding the experiment's lock, or null when none is alive. */
export async function lockHolder(expDir: string): Promise<number | null> {
  const pid = Number((await fs.readFile(lockFile(expDir), 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : null;
}

export async function acquireLock(expDir: string): Promise<() => Promise<void>> {
  const lock = lockFile(expDir);
  await fs.mkdir(expDir, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(lock, String(process.pid), { flag: 'wx' });
      return async () => {
        await fs.rm(lock, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = await lockHolder(expDir);
      if (pid !== null && pid !== process.pid) {
        throw new UserError(`${expDir}: another run of this experiment is in progress (process ${pid}); wait for it or stop it (${lock})`);
      }
      // The holder died (killed, crashed): its lock is stale.
      await fs.rm(lock, { force: true });
    }
  }
  throw new UserError(`${expDir}: could not take the run lock ${lock}`);
}
