import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { checkCheckpoint } from '../checkpoint/manifest.js';
import { readChecked, writeChecked, type CheckedRead } from '../util/checked.js';
import { UserError } from '../util/errors.js';
import { pidAlive } from '../util/pid.js';
import { removeDeadTempsIn, tempOwner } from '../util/temp.js';

/**
 * The cache of one experiment, `reports/EXP/cache/`:
 *
 *   stages/KEY/           a merged stage output (a Hugging Face folder), renamed into place only
 *                         once complete, with STAGE_MARKER written last inside it
 *   diag/KEY.json         that stage's merge diagnostics (kept when the checkpoint is deleted)
 *   evals/KEY.json        one model's evaluation under one eval configuration
 *   pointdiag/KEY.json    a chained point's final-vs-original-parents diagnostics
 *   hashes.json           memo of model folders' content hashes
 *   tmp/                  work in progress; anything here is garbage after a crash
 *
 * Every file is written to a temporary name and renamed, so whatever exists under its final name
 * was whole when it was published; each also carries a checksum written with it (JSON entries in
 * their own envelope, src/util/checked.ts; stage folders in the writer's manifest), because a disk,
 * a copy or a person can damage it later. Nothing is used unchecked: the scan (scan.ts) removes
 * what is damaged and the run recomputes it. Records are a pure function of these files, which is
 * what makes resume exact.
 */

export const STAGE_MARKER = 'mergelab-stage.json';

export class CacheLayout {
  constructor(readonly root: string) {}
  stageDir(key: string): string {
    return path.join(this.root, 'stages', key);
  }
  diagFile(key: string): string {
    return path.join(this.root, 'diag', `${key}.json`);
  }
  evalFile(key: string): string {
    return path.join(this.root, 'evals', `${key}.json`);
  }
  pointDiagFile(key: string): string {
    return path.join(this.root, 'pointdiag', `${key}.json`);
  }
  hashMemo(): string {
    return path.join(this.root, 'hashes.json');
  }
  tmpDir(): string {
    return path.join(this.root, 'tmp');
  }
  newTmp(tag: string): string {
    return path.join(this.tmpDir(), `${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

/** A stage folder counts only with its marker: a folder without one is never used. */
export async function stageComplete(layout: CacheLayout, key: string): Promise<boolean> {
  return exists(path.join(layout.stageDir(key), STAGE_MARKER));
}

/**
 * A cache entry found damaged where it should have been whole (the scan checked it earlier in the
 * run). Not the user's mistake, but its message says all there is to say: no stack trace.
 */
export class DamagedEntryError extends UserError {
  readonly problem: string;
  constructor(file: string, problem: string) {
    super(`damaged cache entry ${file}: ${problem}; it was removed, run again to recompute it`, { file });
    this.name = 'DamagedEntryError';
    this.problem = problem;
  }
}

/** A JSON cache entry, checked against its checksum. */
export function readEntry<T>(file: string): Promise<CheckedRead<T>> {
  return readChecked<T>(file);
}

/** A JSON cache entry that must be whole: a damaged one is removed and reported as a DamagedEntryError. */
export async function readJson<T>(file: string): Promise<T> {
  const r = await readChecked<T>(file);
  if (r.ok) return r.value;
  if (r.kind === 'missing') throw new DamagedEntryError(file, 'it is missing');
  await fs.rm(file, { force: true });
  throw new DamagedEntryError(file, r.problem);
}

/** A JSON cache entry that may be absent (null); a damaged one is removed and reported as a DamagedEntryError. */
export async function readOptional<T>(file: string): Promise<T | null> {
  const r = await readChecked<T>(file);
  if (r.ok) return r.value;
  if (r.kind === 'missing') return null;
  await fs.rm(file, { force: true });
  throw new DamagedEntryError(file, r.problem);
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeChecked(file, value);
}

/**
 * Is a complete stage folder whole? Without `full`, its manifest and file sizes (cheap, for
 * folders nobody reads this run); with it, every checksum (before a folder is read). Returns the
 * problem, or null.
 */
export function checkStage(layout: CacheLayout, key: string, full: boolean): Promise<string | null> {
  return checkCheckpoint(layout.stageDir(key), { full });
}

/**
 * Move a finished folder to its final name. If another process got there first (an orphaned worker
 * of a killed run), the existing folder wins: both are the same deterministic content.
 */
export async function publishDir(tmp: string, target: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  try {
    await fs.rename(tmp, target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      await fs.rm(tmp, { recursive: true, force: true });
      return;
    }
    throw e;
  }
}

/** Remove a stage folder: first rename it away so no reader ever sees it half-deleted. */
export async function removeStageDir(layout: CacheLayout, key: string): Promise<void> {
  const dir = layout.stageDir(key);
  if (!(await exists(dir))) return;
  const trash = layout.newTmp(`del-${key}`);
  await fs.mkdir(path.dirname(trash), { recursive: true });
  try {
    await fs.rename(dir, trash);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await fs.rm(trash, { recursive: true, force: true });
}

/**
 * Clear leftovers of interrupted runs: work in tmp/ (named TAG-PID-HEX) and temporary files beside
 * cache entries (.NAME.tmp-PID-HEX) whose process is gone; a process still alive (a worker of a
 * killed run finishing its task) keeps its own. Returns what was removed.
 */
export async function clearTmp(layout: CacheLayout): Promise<string[]> {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = await fs.readdir(layout.tmpDir());
  } catch {
    // no tmp/
  }
  for (const n of names) {
    const owner = tempOwner(n) ?? Number(/-(\d+)-[0-9a-f]{8}$/.exec(n)?.[1] ?? NaN);
    if (Number.isInteger(owner) && (owner === process.pid || pidAlive(owner))) continue;
    await fs.rm(path.join(layout.tmpDir(), n), { recursive: true, force: true });
    removed.push(path.join(layout.tmpDir(), n));
  }
  for (const dir of [layout.root, ...['diag', 'evals', 'pointdiag', 'stages'].map((d) => path.join(layout.root, d))]) removed.push(...(await removeDeadTempsIn(dir)));
  // A stage folder without its marker cannot come from us (rename is the last step), but a user's
  // copy might: it is moved aside rather than trusted.
  try {
    names = await fs.readdir(path.join(layout.root, 'stages'));
  } catch {
    return removed;
  }
  for (const n of names) {
    if (tempOwner(n) !== null) continue; // a live process's, kept above
    if (n.startsWith('.') || !(await stageComplete(layout, n))) await fs.rm(path.join(layout.root, 'stages', n), { recursive: true, force: true });
  }
  return removed;
}
