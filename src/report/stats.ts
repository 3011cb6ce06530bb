/**
 * The statistics behind every interval on the page, pure: Wilson score intervals, seeded draws
 * (uniform, normal, gamma, beta), percentiles of bootstrap replicates, and the rule that decides
 * whether a difference is larger than the noise.
 */
import { mulberry32 } from '../util/random.js';

export interface Interval {
  lo: number;
  hi: number;
}

/** Two-sided normal quantile for a confidence level (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** Wilson score interval of k successes in n trials at confidence `level`. */
export function wilson(k: number, n: number, level = 0.95): Interval {
  if (!(n > 0)) throw new RangeError(`wilson: n must be positive, got ${n}`);
  if (k < 0 || k > n) throw new RangeError(`wilson: k must be in [0, n], got ${k} of ${n}`);
  const z = normalQuantile(1 - (1 - level) / 2);
  const z2 = z * z;
  const p = k / n;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // At k = 0 or n the bound is exactly 0 or 1; rounding must not leave it a hair inside.
  return { lo: k === 0 ? 0 : Math.max(0, centre - half), hi: k === n ? 1 : Math.min(1, centre + half) };
}

/** 32-bit FNV-1a of a string: derives an independent stream per (seed, purpose, point, ...). */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A uniform [0, 1) stream determined by the recorded seed and the names of what it draws for. */
export function streamFor(seed: number, ...keys: (string | number)[]): () => number {
  return mulberry32(hash32(`${seed}\u0000${keys.join('\u0000')}`));
}

/** Standard normal draws (Box-Muller) from a uniform stream. */
export function normalStream(u: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let a = 0;
    while (a === 0) a = u();
    const r = Math.sqrt(-2 * Math.log(a));
    const t = 2 * Math.PI * u();
    spare = r * Math.sin(t);
    return r * Math.cos(t);
  };
}

/** A Gamma(shape, 1) draw (Marsaglia and Tsang; shape < 1 boosted by u^(1/shape)). */
export function gammaDraw(shape: number, u: () => number, normal: () => number): number {
  if (shape < 1) return gammaDraw(shape + 1, u, normal) * Math.pow(u() || Number.MIN_VALUE, 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number, v: number;
    do {
      x = normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const w = u();
    if (w < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(w) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** A Beta(a, b) draw from two gamma draws. */
export function betaDraw(a: number, b: number, u: () => number, normal: () => number): number {
  const x = gammaDraw(a, u, normal);
  const y = gammaDraw(b, u, normal);
  return x / (x + y);
}

/** Sorted copy without NaNs (a typed-array sort: numeric, and NaNs go last). */
function sortedFinite(values: ArrayLike<number>): { xs: Float64Array; n: number } {
  const xs = Float64Array.from(values).sort();
  let n = xs.length;
  while (n > 0 && Number.isNaN(xs[n - 1])) n--;
  return { xs, n };
}

function quantileSorted(xs: Float64Array, n: number, q: number): number {
  if (!n) return NaN;
  const pos = (n - 1) * q;
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < n ? xs[i] + f * (xs[i + 1] - xs[i]) : xs[i];
}

/** The q-quantile of values (linear interpolation between order statistics); NaNs are ignored. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const { xs, n } = sortedFinite(values);
  return quantileSorted(xs, n, q);
}

/** Percentile interval of bootstrap replicates. */
export function percentileInterval(reps: ArrayLike<number>, level = 0.95): Interval {
  const tail = (1 - level) / 2;
  const { xs, n } = sortedFinite(reps);
  return { lo: quantileSorted(xs, n, tail), hi: quantileSorted(xs, n, 1 - tail) };
}

export type Verdict = 'better' | 'worse' | 'within noise';

/**
 * How A compares with B given an interval for the difference A - B: better or worse only when
 * the whole interval lies on one side of zero (in the metric's good direction), else within noise.
 */
export function verdict(diff: Interval, higherIsBetter = true): Verdict {
  if (diff.lo > 0) return higherIsBetter ? 'better' : 'worse';
  if (diff.hi < 0) return higherIsBetter ? 'worse' : 'better';
  return 'within noise';
}

/** Elementwise combination of replicate arrays (NaN where any input is missing). */
export function combine(reps: readonly (ArrayLike<number> | undefined)[], f: (...xs: number[]) => number): Float64Array | undefined {
  if (reps.some((r) => r === undefined)) return undefined;
  const n = reps[0]!.length;
  const out = new Float64Array(n);
  const xs = new Array<number>(reps.length);
  for (let b = 0; b < n; b++) {
    for (let j = 0; j < reps.length; j++) xs[j] = reps[j]![b];
    out[b] = f(...xs);
  }
  return out;
}
