import { fmtBytes } from '../util/disk.js';
import type { Plan } from './plan.js';

export { fmtBytes, freeBytes } from '../util/disk.js';

/**
 * How much disk a sweep's merges take: every merge writes about one model's weights; a stage that
 * other stages read stays on disk until its last reader is done, and each running merge holds
 * its own output until evaluated.
 */

export interface DiskEstimate {
  modelBytes: number;
  /** Bytes written in all. */
  total: number;
  /** Bytes on disk at most at once. */
  peak: number;
  /** Free bytes where the experiment's folder is (null when unknown). */
  free: number | null;
}

/**
 * Pure: the estimate from counts. `concurrent` is how many merges may hold an output at once
 * (null: all of them); `bound` is max_models_on_disk where the run applies it.
 */
export function estimateDisk(plan: Plan, merges: Set<string>, modelBytes: number, opts: { keepModels: boolean; concurrent: number | null; bound?: number | null }): { total: number; peak: number } {
  const upstream = new Set([...plan.stages.values()].flatMap((s) => Object.values(s.inputs).flatMap((i) => (i.kind === 'stage' ? [i.key] : []))));
  const intermediates = [...merges].filter((k) => upstream.has(k)).length;
  const total = merges.size * modelBytes;
  const unbounded = opts.keepModels || opts.concurrent === null ? merges.size : Math.min(merges.size, intermediates + opts.concurrent);
  const peak = Math.min(unbounded, opts.bound ?? Infinity) * modelBytes;
  return { total, peak };
}

export function diskLine(merges: number, d: DiskEstimate, keepModels: boolean, bound: number | null = null): string {
  const held = bound !== null ? `, at most ${bound} on disk at once (max_models_on_disk)` : '';
  return `disk needed: ${fmtBytes(d.peak)} at most at once (${merges} merge${merges === 1 ? '' : 's'} x ~${fmtBytes(d.modelBytes)}${keepModels ? ', all kept (--keep-models)' : `; checkpoints are deleted once evaluated${held}, ${fmtBytes(d.total)} written in all`})${d.free !== null ? `; ${fmtBytes(d.free)} free` : ''}`;
}
