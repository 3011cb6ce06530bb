/**
 * The factors a variant is swept over: its varying axes, with zipped axes folded into one factor
 * (w_stage1, w_chat and normalize moving together are one weighting, not three axes), the seed a
 * factor of its own, and whether two factors are crossed (every pair of levels present).
 */
import type { ResultRecord } from '../results/record.js';
import { formatAxisValue, seedOf } from './metrics.js';

type AxisValue = ResultRecord['axes'][string];

export interface Factor {
  /** Display name: the axis, or the zipped axes joined by '/'. */
  name: string;
  axes: string[];
  /** One number per level when the factor is a single numeric axis (for x axes). */
  numeric: boolean;
  /** Levels in order (numbers ascending, else by value). */
  levels: string[];
  levelOf(r: ResultRecord): string;
}

const SEED = 'seed';

const valueKey = (v: AxisValue | undefined): string => JSON.stringify(v ?? null);

/** Every record's value of `b` is fixed by its value of `a`. */
function determines(records: readonly ResultRecord[], a: string, b: string): boolean {
  const seen = new Map<string, string>();
  for (const r of records) {
    const ka = valueKey(r.axes[a]), vb = valueKey(r.axes[b]);
    const prev = seen.get(ka);
    if (prev !== undefined && prev !== vb) return false;
    seen.set(ka, vb);
  }
  return true;
}

function compareValues(x: AxisValue | undefined, y: AxisValue | undefined): number {
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  return formatAxisValue(x).localeCompare(formatAxisValue(y), 'en', { numeric: true });
}

/**
 * Factors of a set of records (one variant's, typically), in axis order: each varying axis not
 * already fixed by another joins the factor of the axis that fixes the most others. The seed is
 * last, as its own factor, when records differ in it.
 */
export function factorsOf(records: readonly ResultRecord[]): Factor[] {
  const axes: string[] = [];
  for (const r of records) for (const a of Object.keys(r.axes)) if (a !== SEED && !axes.includes(a)) axes.push(a);
  const varying = axes.filter((a) => new Set(records.map((r) => valueKey(r.axes[a]))).size > 1);
  const fixes = new Map(varying.map((a) => [a, varying.filter((b) => determines(records, a, b))]));
  const byReach = [...varying].sort((a, b) => fixes.get(b)!.length - fixes.get(a)!.length || varying.indexOf(a) - varying.indexOf(b));
  const covered = new Set<string>();
  const groups: string[][] = [];
  for (const a of byReach) {
    if (covered.has(a)) continue;
    const members = fixes.get(a)!.filter((b) => !covered.has(b));
    members.forEach((b) => covered.add(b));
    groups.push(varying.filter((b) => members.includes(b)));
  }
  groups.sort((g, h) => varying.indexOf(g[0]) - varying.indexOf(h[0]));
  const out = groups.map((g) => makeFactor(records, g));
  const seeds = new Set(records.map((r) => seedOf(r)));
  if (seeds.size > 1) {
    const levels = [...seeds].sort((a, b) => (a ?? -1) - (b ?? -1)).map((s) => String(s ?? '-'));
    out.push({ name: SEED, axes: [SEED], numeric: false, levels, levelOf: (r) => String(seedOf(r) ?? '-') });
  }
  return out;
}

function makeFactor(records: readonly ResultRecord[], axes: string[]): Factor {
  const levelOf = (r: ResultRecord): string => axes.map((a) => formatAxisValue(r.axes[a])).join('/');
  const byLevel = new Map<string, ResultRecord>();
  for (const r of records) if (!byLevel.has(levelOf(r))) byLevel.set(levelOf(r), r);
  const levels = [...byLevel.entries()].sort(([, x], [, y]) => {
    for (const a of axes) {
      const c = compareValues(x.axes[a], y.axes[a]);
      if (c) return c;
    }
    return 0;
  }).map(([l]) => l);
  const numeric = axes.length === 1 && records.every((r) => typeof r.axes[axes[0]] === 'number');
  return { name: axes.join('/'), axes, numeric, levels, levelOf };
}

/** Every combination of the two factors' levels occurs among the records. */
export function crossed(records: readonly ResultRecord[], f: Factor, g: Factor): boolean {
  const pairs = new Set(records.map((r) => `${f.levelOf(r)}\u0000${g.levelOf(r)}`));
  return pairs.size === f.levels.length * g.levels.length;
}

/** "density=0.3, w_stage1/w_chat/normalize=1/1/false": a record's levels of the given factors. */
export function levelsLabel(r: ResultRecord, factors: readonly Factor[]): string {
  return factors.map((f) => `${f.name}=${f.levelOf(r)}`).join(', ');
}
