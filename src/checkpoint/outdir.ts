import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import { removeDeadTemps } from '../util/temp.js';
import { MANIFEST_FILE, readManifest } from './manifest.js';

/**
 * The output folder of a merge: what may be replaced, and the replacement itself.
 *
 * mergelab replaces an existing folder only when it wrote that folder (its manifest lists every
 * entry in it) or when told to (`force`); a folder holding anything else is the user's and is
 * refused before any work starts. The replacement is two renames (the old folder aside, the new
 * one in) recorded first in a journal beside the output, `.NAME.mergelab-swap.json`; the next
 * writer to NAME finishes a replacement a crash interrupted, so whatever the moment of the kill,
 * the old or the new folder ends up at NAME and neither is lost.
 */

export type OutDirState =
  | { kind: 'absent' }
  | { kind: 'empty' }
  | { kind: 'mergelab' }
  | { kind: 'foreign'; entries: string[]; why: string }
  | { kind: 'not-a-folder' };

export async function classifyOutDir(target: string): Promise<OutDirState> {
  let st;
  try {
    st = await fs.lstat(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw e;
  }
  if (!st.isDirectory()) return { kind: 'not-a-folder' };
  const entries = (await fs.readdir(target)).sort();
  if (entries.length === 0) return { kind: 'empty' };
  const m = await readManifest(target);
  if (!m.ok) return { kind: 'foreign', entries, why: m.missing ? `it has no ${MANIFEST_FILE}, so mergelab did not write it` : m.problem };
  const ours = new Set([...Object.keys(m.manifest.files), MANIFEST_FILE]);
  const extra = entries.filter((e) => !ours.has(e));
  if (extra.length) return { kind: 'foreign', entries: extra, why: `mergelab wrote it, but not ${extra.length === 1 ? 'this entry' : 'these entries'}` };
  return { kind: 'mergelab' };
}

function listed(entries: string[]): string {
  const shown = entries.slice(0, 5).join(', ');
  return entries.length > 5 ? `${shown} and ${entries.length - 5} more` : shown;
}

/** Throws the refusal for a state that must not be replaced without `force`. */
function refuse(target: string, state: OutDirState, what: string): void {
  if (state.kind === 'foreign') {
    throw new UserError(
      `${what} ${target}: the folder holds files mergelab did not write (${listed(state.entries)}; ${state.why}); refusing to replace it. Choose a new or empty folder, or pass --force to replace it and delete those files`,
      { file: target, field: '--out' },
    );
  }
  if (state.kind === 'not-a-folder') {
    throw new UserError(`${what} ${target}: exists and is not a folder; expected a new, empty or earlier mergelab output folder (or pass --force to replace it)`, { file: target, field: '--out' });
  }
}

function journalPath(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.mergelab-swap.json`);
}

interface Journal {
  version: 1;
  /** Basename of the complete new folder, beside the target. */
  new: string;
  /** Basename the old folder is moved to, beside the target. */
  old: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finish a replacement of `target` that a crash interrupted (see the module comment). Every step
 * checks what is on disk, so a crash during recovery is recovered by the next call. Returns what
 * it did, or null when there was nothing to do.
 */
export async function recoverSwap(target: string): Promise<string | null> {
  const jf = journalPath(target);
  let text: string;
  try {
    text = await fs.readFile(jf, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let j: Journal;
  try {
    j = JSON.parse(text) as Journal;
    if (j.version !== 1 || typeof j.new !== 'string' || typeof j.old !== 'string' || j.new.includes('/') || j.old.includes('/')) throw new Error('unexpected fields');
  } catch (e) {
    throw new UserError(`${jf}: the journal of an interrupted replacement of ${target} is unreadable (${(e as Error).message}); look for the old and new folders beside it (.${path.basename(target)}.old-* and .${path.basename(target)}.tmp-*) and put one back by hand, then delete the journal`, { file: jf });
  }
  const dir = path.dirname(target);
  const newDir = path.join(dir, j.new);
  const oldDir = path.join(dir, j.old);
  let did = `removed the old copy left by an interrupted replacement of ${target}`;
  if (await exists(newDir)) {
    // The new folder was complete before the journal was written: finish putting it in place.
    if (await exists(target)) {
      if (await exists(oldDir)) {
        throw new UserError(`${target}: an interrupted replacement left ${newDir} (new) and ${oldDir} (old) beside it, and ${target} exists as well; keep the one you want at ${target}, then delete the others and ${jf}`, { file: target });
      }
      await fs.rename(target, oldDir);
    }
    await fs.rename(newDir, target);
    did = `finished replacing ${target}, which a crash had interrupted`;
  } else if (!(await exists(target))) {
    // Nothing at the target and no new folder: put the old one back.
    if (await exists(oldDir)) {
      await fs.rename(oldDir, target);
      did = `restored ${target}, which a crash had left aside`;
    }
  }
  await fs.rm(oldDir, { recursive: true, force: true });
  await fs.rm(jf, { force: true });
  return did;
}

/**
 * Before writing to `target`: finish an interrupted replacement, remove temporaries of dead
 * processes, and refuse a folder mergelab did not write unless `force`. `what` names the option
 * in messages (`--out`).
 */
export async function prepareOutDir(target: string, opts: { force?: boolean; what?: string } = {}): Promise<string | null> {
  const recovered = await recoverSwap(target);
  await removeDeadTemps(target);
  if (!opts.force) refuse(target, await classifyOutDir(target), opts.what ?? '--out');
  return recovered;
}

/** A test hook: `MERGELAB_TEST_SWAP_KILL=STEP` kills this process with SIGKILL right after that step of a replacement. */
function step(name: string): void {
  if (process.env.MERGELAB_TEST_SWAP_KILL === name) process.kill(process.pid, 'SIGKILL');
}

export const SWAP_STEPS = ['journal', 'old-aside', 'new-in-place', 'old-removed', 'journal-removed'] as const;

/** Put the complete folder `from` at `target` (beside it), replacing what is there if allowed. */
export async function swapIntoPlace(from: string, target: string, opts: { force?: boolean; what?: string } = {}): Promise<void> {
  const state = await classifyOutDir(target);
  if (!opts.force) refuse(target, state, opts.what ?? '--out');
  if (state.kind === 'absent') {
    try {
      await fs.rename(from, target);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Appeared meanwhile: decide again, on what is there now.
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return swapIntoPlace(from, target, opts);
      throw e;
    }
  }
  const jf = journalPath(target);
  const old = `.${path.basename(target)}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
  const oldDir = path.join(path.dirname(target), old);
  await writeFileAtomic(jf, JSON.stringify({ version: 1, new: path.basename(from), old } satisfies Journal) + '\n');
  step('journal');
  try {
    await fs.rename(target, oldDir);
    step('old-aside');
    await fs.rename(from, target);
    step('new-in-place');
  } catch (e) {
    // Undo what can be undone now; what cannot, the journal lets the next start finish.
    if (!(await exists(target)) && (await exists(oldDir))) await fs.rename(oldDir, target).catch(() => undefined);
    if (await exists(target)) await fs.rm(jf, { force: true });
    throw e;
  }
  await fs.rm(oldDir, { recursive: true, force: true });
  step('old-removed');
  await fs.rm(jf, { force: true });
  step('journal-removed');
}
