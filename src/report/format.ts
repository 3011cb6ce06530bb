/**
 * Numbers as the page prints them: no more digits than the measurement resolves. A share of n
 * items moves in steps of 1/n, so it gets the decimals that tell one item from the next (two for
 * 40 or 100 items, three for 1,000); other scores get four significant digits.
 */
import type { Aggregation } from '../results/metric.js';
import type { Interval } from './stats.js';

/** What formatting needs of a metric (a MetricInfo has it). */
interface Printable {
  aggregation: Aggregation;
  unit: string;
  items?: number;
  decimals?: number;
}

const isShare = (m: Printable): boolean => m.aggregation === 'proportion' || m.unit.startsWith('share');

/** Decimals a share of `items` items needs (at least 2). */
export const shareDecimals = (items: number | undefined): number => Math.max(2, Math.ceil(Math.log10(items ?? 100)));

/** Decimals for a metric's numbers, or undefined for significant-digit formatting. */
export function decimalsFor(m: Printable): number | undefined {
  return m.decimals ?? (isShare(m) ? shareDecimals(m.items) : undefined);
}

/**
 * The decimals a metric is printed with: a share's from its item count; any other number's four
 * significant digits at the typical (median) size of its values, so a change prints at the same
 * resolution as the scores it is the change of.
 */
export function printDecimals(m: Omit<Printable, 'decimals'>, values: readonly number[]): number | undefined {
  if (isShare(m)) return shareDecimals(m.items);
  const mags = values.map(Math.abs).filter((v) => v > 0).sort((a, b) => a - b);
  if (!mags.length) return undefined;
  const median = mags[Math.floor(mags.length / 2)];
  return Math.max(0, Math.min(6, 3 - Math.floor(Math.log10(median))));
}

/** One score. */
export function fmtScore(m: Printable, v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  const d = decimalsFor(m);
  if (Math.abs(v) >= 1e6) return v.toExponential(2);
  if (d !== undefined) return v.toFixed(d);
  return String(Number(v.toPrecision(4)));
}

/** A difference of two scores, signed. */
export function fmtChange(m: Printable, v: number): string {
  const s = fmtScore(m, Math.abs(v));
  return v > 0 && s !== fmtScore(m, 0) ? `+${s}` : v < 0 && s !== fmtScore(m, 0) ? `-${s}` : s;
}

/** "[lo, hi]", or '' without an interval. */
export function fmtInterval(m: Printable, iv: Interval | undefined): string {
  return iv ? `[${fmtScore(m, iv.lo)}, ${fmtScore(m, iv.hi)}]` : '';
}

/** A score with its interval: "0.68 [0.52, 0.80]". */
export function fmtScored(m: Printable, v: number | undefined, iv: Interval | undefined): string {
  return iv ? `${fmtScore(m, v)} ${fmtInterval(m, iv)}` : fmtScore(m, v);
}

/** A share of something else (a retention): "64%" with its interval "[51%, 78%]". */
export function fmtPct(v: number | undefined, iv?: Interval): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  const p = (x: number): string => `${Math.round(x * 100)}%`;
  return iv ? `${p(v)} [${p(iv.lo)}, ${p(iv.hi)}]` : p(v);
}

/** d3-format string for chart axes and tooltips of this metric. */
export function d3Format(m: Printable): string {
  const d = decimalsFor(m);
  return d !== undefined ? `.${d}f` : '.4~r';
}

/** A difference of two shares in percentage points with its interval: "-3 points [-20, +14]". */
export function pctDiff(v: number, iv?: Interval): string {
  const p = (x: number): string => `${Math.round(x * 100) > 0 ? '+' : ''}${Math.round(x * 100)}`;
  return iv ? `${p(v)} points [${p(iv.lo)}, ${p(iv.hi)}]` : `${p(v)} points`;
}
