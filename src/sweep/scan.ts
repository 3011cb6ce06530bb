import { CacheLayout, exists, stageComplete } from './cache.js';
import type { Plan, PointNode } from './plan.js';

/**
 * What the cache already holds for a plan, and which merges the unfinished points still need.
 * Everything under a final name in the cache is whole (see cache.ts), so existence is proof.
 */

export interface Have {
  /** Stages whose merge diagnostics exist (merged at some point). */
  diag: Set<string>;
  /** Stages whose checkpoint folder is on disk. */
  folder: Set<string>;
  evals: Set<string>;
  /** Point-diagnostics keys. */
  pds: Set<string>;
}

export async function scanCache(plan: Plan, layout: CacheLayout): Promise<Have> {
  const have: Have = { diag: new Set(), folder: new Set(), evals: new Set(), pds: new Set() };
  for (const key of plan.stages.keys()) {
    if (await exists(layout.diagFile(key))) have.diag.add(key);
    if (await stageComplete(layout, key)) have.folder.add(key);
  }
  for (const p of plan.points) {
    if (await exists(layout.evalFile(p.evalKey))) have.evals.add(p.evalKey);
    if (p.pointDiag && (await exists(layout.pointDiagFile(p.pointDiag.key)))) have.pds.add(p.pointDiag.key);
  }
  return have;
}

export function pointComplete(p: PointNode, have: Have): boolean {
  return have.evals.has(p.evalKey) && (!p.pointDiag || have.pds.has(p.pointDiag.key)) && p.stages.every((k) => have.diag.has(k));
}

/** Which stages must be merged, given what the cache holds and what unfinished points need. */
export function neededMerges(plan: Plan, have: Have): Set<string> {
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
    if (p.role === 'merge' && (!have.evals.has(p.evalKey) || (p.pointDiag && !have.pds.has(p.pointDiag.key)))) needFolder(p.modelKey);
    for (const k of p.stages) if (!have.diag.has(k)) needMerge(k);
  }
  return merges;
}
