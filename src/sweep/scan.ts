import { promises as fs } from 'node:fs';
import { CacheLayout, checkStage, readEntry, removeStageDir, stageComplete } from './cache.js';
import type { Plan, PointNode } from './plan.js';

/**
 * What the cache already holds for a plan, and which merges the unfinished points still need.
 *
 * Nothing counts as held until it is checked: a JSON entry against its checksum, a stage folder
 * against its manifest (sizes for every folder, every checksum for the folders this run will read).
 * A damaged entry is reported once, naming its path, and removed, so the run recomputes it and
 * whatever needs it; an entry is never used on trust.
 */

export interface Have {
  /** Stages whose merge diagnostics exist (merged at some point). */
  diag: Set<string>;
  /** Stages whose checkpoint folder is on disk. */
  folder: Set<string>;
  evals: Set<string>;
  /** Point-diagnostics keys. */
  pds: Set<string>;
  /** Stage folders this scan found damaged and removed (with --keep-models they are merged again). */
  lost: Set<string>;
}

export interface ScanOptions {
  /** Called once per damaged entry (its path and what is wrong with it). */
  onDamaged?: (entry: string, problem: string) => void;
  /** Entries from before checksums: how many, and one of them (reported as one line). */
  onUnchecked?: (count: number, example: string) => void;
  /** Remove damaged entries (default true; a dry run only reports them). */
  repair?: boolean;
  /** Checkpoints are kept (--keep-models): a damaged stage folder is merged again even when no point needs it. */
  keepModels?: boolean;
  /**
   * Check every checksum of the stage folders the run will read (default true). Without it folders
   * are checked by size only: a quick look (`mergelab status`) reads no checkpoint.
   */
  verify?: boolean;
}

export async function scanCache(plan: Plan, layout: CacheLayout, opts: ScanOptions = {}): Promise<Have> {
  const have: Have = { diag: new Set(), folder: new Set(), evals: new Set(), pds: new Set(), lost: new Set() };
  const repair = opts.repair !== false;
  const unchecked: string[] = [];
  const drop = async (entry: string, problem: string, kind: 'damaged' | 'unchecked', remove: () => Promise<void>): Promise<void> => {
    if (kind === 'unchecked') unchecked.push(entry);
    else opts.onDamaged?.(entry, problem);
    if (repair) await remove();
  };
  const entry = async (file: string): Promise<boolean> => {
    const r = await readEntry<unknown>(file);
    if (r.ok) return true;
    if (r.kind !== 'missing') await drop(file, r.problem, r.kind, () => fs.rm(file, { force: true }));
    return false;
  };
  const folder = async (key: string, full: boolean): Promise<boolean> => {
    const problem = await checkStage(layout, key, full);
    if (problem === null) return true;
    await drop(layout.stageDir(key), problem, 'damaged', () => removeStageDir(layout, key));
    have.lost.add(key);
    return false;
  };

  for (const key of plan.stages.keys()) {
    if (await entry(layout.diagFile(key))) have.diag.add(key);
    if ((await stageComplete(layout, key)) && (await folder(key, false))) have.folder.add(key);
  }
  for (const p of plan.points) {
    if (!have.evals.has(p.evalKey) && (await entry(layout.evalFile(p.evalKey)))) have.evals.add(p.evalKey);
    if (p.pointDiag && !have.pds.has(p.pointDiag.key) && (await entry(layout.pointDiagFile(p.pointDiag.key)))) have.pds.add(p.pointDiag.key);
  }
  // The folders this run reads are checked in full; one found damaged is merged again, which may
  // make its own inputs needed: repeat until nothing changes.
  const verified = new Set<string>();
  for (; opts.verify !== false; ) {
    const toCheck = [...foldersRead(plan, have, neededMerges(plan, have, { keepModels: opts.keepModels }))].filter((k) => !verified.has(k));
    if (toCheck.length === 0) break;
    for (const key of toCheck) {
      verified.add(key);
      if (!(await folder(key, true))) have.folder.delete(key);
    }
  }
  if (unchecked.length) opts.onUnchecked?.(unchecked.length, unchecked[0]);
  return have;
}

export function pointComplete(p: PointNode, have: Have): boolean {
  return have.evals.has(p.evalKey) && (!p.pointDiag || have.pds.has(p.pointDiag.key)) && p.stages.every((k) => have.diag.has(k));
}

/** Does the point still need its final model read (an evaluation or point diagnostics missing)? */
function needsFinalModel(p: PointNode, have: Have): boolean {
  return p.role === 'merge' && (!have.evals.has(p.evalKey) || (p.pointDiag !== null && !have.pds.has(p.pointDiag.key)));
}

/**
 * Which stages must be merged, given what the cache holds and what unfinished points need; with
 * `keepModels`, also the kept folders the scan removed as damaged.
 */
export function neededMerges(plan: Plan, have: Have, opts: { keepModels?: boolean } = {}): Set<string> {
  const merges = new Set<string>();
  const needMerge = (key: string): void => {
    if (merges.has(key)) return;
    merges.add(key);
    for (const inp of Object.values(plan.stages.get(key)!.inputs)) if (inp.kind === 'stage') needFolder(inp.key);
  };
  const needFolder = (key: string): void => {
    if (!have.folder.has(key)) needMerge(key);
  };
  for (const p of plan.points) {
    if (pointComplete(p, have)) continue;
    if (needsFinalModel(p, have)) needFolder(p.modelKey);
    for (const k of p.stages) if (!have.diag.has(k)) needMerge(k);
  }
  if (opts.keepModels) for (const k of have.lost) needFolder(k);
  return merges;
}

/** Stage folders already on disk that this run's tasks will read (merge inputs, models to evaluate). */
export function foldersRead(plan: Plan, have: Have, merges: Set<string>): Set<string> {
  const out = new Set<string>();
  for (const key of merges) for (const inp of Object.values(plan.stages.get(key)!.inputs)) if (inp.kind === 'stage' && have.folder.has(inp.key)) out.add(inp.key);
  for (const p of plan.points) if (!pointComplete(p, have) && needsFinalModel(p, have) && have.folder.has(p.modelKey)) out.add(p.modelKey);
  return out;
}
