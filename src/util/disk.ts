import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';

/**
 * Free disk space, and a full disk as one line naming the path and the space needed instead of a
 * stack trace from deep inside a write.
 */

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${u[i]}`;
}

/**
 * Bytes free to this user on the filesystem holding `p` (its nearest existing ancestor), or null
 * when unknown. `MERGELAB_TEST_FREE_BYTES` overrides it: a test hook, so tests can pass the
 * pre-flight check on a small filesystem and meet the full disk in the middle of the work.
 */
export async function freeBytes(p: string, opts: { measured?: boolean } = {}): Promise<number | null> {
  const forced = process.env.MERGELAB_TEST_FREE_BYTES;
  if (forced && !opts.measured) return Number(forced);
  try {
    let at = path.resolve(p);
    for (;;) {
      try {
        const st = await fs.statfs(at);
        return st.bavail * st.bsize;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(at) === at) throw e;
        at = path.dirname(at);
      }
    }
  } catch {
    return null;
  }
}

export function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

const MARK = 'out of disk space';

/** A write that found the disk full. Its message is one line and always contains `out of disk space`. */
export class DiskFullError extends UserError {
  constructor(
    readonly path: string,
    readonly neededBytes: number | null,
    readonly freeBytes: number | null,
    cause?: unknown,
  ) {
    const need = neededBytes !== null ? `needs about ${fmtBytes(neededBytes)}` : 'the filesystem is full';
    const free = freeBytes !== null ? `, ${fmtBytes(freeBytes)} free there` : '';
    super(`${path}: ${MARK} (${need}${free}); free some space and run again`, { file: path, cause });
    this.name = 'DiskFullError';
  }
}

/** The DiskFullError for a failed write of `target` (`needed`: what the whole write takes). */
export async function diskFull(target: string, needed: number | null, cause?: unknown): Promise<DiskFullError> {
  return new DiskFullError(target, needed, await freeBytes(path.dirname(target), { measured: true }), cause);
}

/** Is this message (a worker's error, carried as text) a full disk? */
export function isDiskFullMessage(message: string): boolean {
  return message.includes(`: ${MARK} (`);
}

/** The pre-flight check: throws when `needed` bytes will not fit where `dir` is. */
export async function checkFreeSpace(dir: string, needed: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  if (free !== null && needed > free) {
    throw new UserError(`${dir}: not enough free disk space: ${what} needs about ${fmtBytes(needed)}, ${fmtBytes(free)} free there; free some space or write elsewhere`, { file: dir });
  }
}
