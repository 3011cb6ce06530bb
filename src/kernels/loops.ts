/**
 * The fused typed-array loops behind the 'typed' backend, written over an element range so the
 * same code runs on the main thread and in worker threads.
 *
 * Reductions are split-invariant: every reduction accumulates in float64 per fixed block of
 * BLOCK elements into `partials[block * K + k]`, and the caller sums the block partials in block
 * order. Work splits always fall on block boundaries, so a sum (and anything derived from it, such
 * as the L1 rescale factor) is bit-identical whatever the number of threads.
 */
import { fillBernoulli } from './rng.js';
import type { RngKey } from './types.js';

export const BLOCK = 1 << 16;

export type MaskArray = Uint8Array | Float32Array | null;

export function blockCount(n: number): number {
  return Math.ceil(n / BLOCK);
}

/** Sum per-block partials (K values per block) in block order. */
export function reducePartials(partials: Float64Array, K: number): number[] {
  const out = new Array<number>(K).fill(0);
  const nb = partials.length / K;
  for (let b = 0; b < nb; b++) for (let k = 0; k < K; k++) out[k] += partials[b * K + k];
  return out;
}

/** Gram layout: K = n (l1) + n*(n+1)/2 (upper-triangular dots incl. diagonal). */
export function gramK(n: number): number {
  return n + (n * (n + 1)) / 2;
}

export function gramRange(models: Float32Array[], base: Float32Array | null, start: number, end: number, partials: Float64Array): void {
  const n = models.length;
  const K = gramK(n);
  const d = new Float64Array(n);
  const acc = new Float64Array(K);
  for (let b0 = start; b0 < end; b0 += BLOCK) {
    const b1 = Math.min(b0 + BLOCK, end);
    acc.fill(0);
    if (n === 1) {
      const x = models[0];
      let l1 = 0;
      let sq = 0;
      for (let j = b0; j < b1; j++) {
        const v = base ? x[j] - base[j] : x[j];
        l1 += Math.abs(v);
        sq += v * v;
      }
      acc[0] = l1;
      acc[1] = sq;
    } else if (n === 2) {
      const x0 = models[0];
      const x1 = models[1];
      let a0 = 0, a1 = 0, s00 = 0, s01 = 0, s11 = 0;
      for (let j = b0; j < b1; j++) {
        const bb = base ? base[j] : 0;
        const v0 = x0[j] - bb;
        const v1 = x1[j] - bb;
        a0 += Math.abs(v0);
        a1 += Math.abs(v1);
        s00 += v0 * v0;
        s01 += v0 * v1;
        s11 += v1 * v1;
      }
      acc[0] = a0; acc[1] = a1; acc[2] = s00; acc[3] = s01; acc[4] = s11;
    } else {
      for (let j = b0; j < b1; j++) {
        const bb = base ? base[j] : 0;
        for (let i = 0; i < n; i++) {
          const v = models[i][j] - bb;
          d[i] = v;
          acc[i] += Math.abs(v);
        }
        let k = n;
        for (let i = 0; i < n; i++) {
          const di = d[i];
          for (let l = i; l < n; l++) acc[k++] += di * d[l];
        }
      }
    }
    const off = Math.floor(b0 / BLOCK) * K;
    for (let k = 0; k < K; k++) partials[off + k] = acc[k];
  }
}

/** Unpack reduced gram sums into l1 / l2sq / full dot matrix. */
export function unpackGram(sums: number[], n: number): { l1: number[]; l2sq: number[]; dot: number[] } {
  const l1 = sums.slice(0, n);
  const dot = new Array<number>(n * n).fill(0);
  let k = n;
  for (let i = 0; i < n; i++) for (let l = i; l < n; l++) {
    dot[i * n + l] = sums[k];
    dot[l * n + i] = sums[k];
    k++;
  }
  const l2sq = l1.map((_, i) => dot[i * n + i]);
  return { l1, l2sq, dot };
}

/** K = 3: full L1, kept L1, kept count. */
export function maskedL1Range(x: Float32Array, base: Float32Array, mask: MaskArray, start: number, end: number, partials: Float64Array): void {
  for (let b0 = start; b0 < end; b0 += BLOCK) {
    const b1 = Math.min(b0 + BLOCK, end);
    const off = Math.floor(b0 / BLOCK) * 3;
    // One monomorphic loop per mask type: a loop that sees both array types runs several times slower.
    if (mask === null) l1NoMask(x, base, b0, b1, partials, off);
    else if (mask instanceof Uint8Array) l1U8(x, base, mask, b0, b1, partials, off);
    else l1F32(x, base, mask, b0, b1, partials, off);
  }
}

function l1NoMask(x: Float32Array, base: Float32Array, b0: number, b1: number, partials: Float64Array, off: number): void {
  let full = 0;
  for (let j = b0; j < b1; j++) full += Math.abs(x[j] - base[j]);
  partials[off] = full;
  partials[off + 1] = full;
  partials[off + 2] = b1 - b0;
}

function l1U8(x: Float32Array, base: Float32Array, mask: Uint8Array, b0: number, b1: number, partials: Float64Array, off: number): void {
  let full = 0;
  let kept = 0;
  let count = 0;
  for (let j = b0; j < b1; j++) {
    const a = Math.abs(x[j] - base[j]);
    const m = mask[j];
    full += a;
    kept += a * m; // branch-free: random masks would mispredict half the time
    count += m;
  }
  partials[off] = full;
  partials[off + 1] = kept;
  partials[off + 2] = count;
}

function l1F32(x: Float32Array, base: Float32Array, mask: Float32Array, b0: number, b1: number, partials: Float64Array, off: number): void {
  let full = 0;
  let kept = 0;
  let count = 0;
  for (let j = b0; j < b1; j++) {
    const a = Math.abs(x[j] - base[j]);
    const m = mask[j];
    full += a;
    kept += a * m;
    count += +(m !== 0);
  }
  partials[off] = full;
  partials[off + 1] = kept;
  partials[off + 2] = count;
}

/** Number of non-zero entries (kept elements) of a mask. */
export function countNonZero(mask: Uint8Array | Float32Array): number {
  return mask instanceof Uint8Array ? countU8(mask) : countF32(mask);
}

function countU8(m: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < m.length; i++) n += m[i];
  return n;
}

function countF32(m: Float32Array): number {
  let n = 0;
  for (let i = 0; i < m.length; i++) n += +(m[i] !== 0);
  return n;
}

export interface CombineArgs {
  base: Float32Array;
  models: Float32Array[];
  masks: MaskArray[];
  coeffs: number[];
  weights: number[];
  consensus: boolean;
  normalize: boolean;
  lambda: number;
  gram: boolean;
  out: Float32Array;
}

/**
 * Combine partial layout per block: [signConflicts, mergedDeltaL2sq, ...gram (gramK(n)) if requested].
 */
export function combineK(n: number, gram: boolean): number {
  return 2 + (gram ? gramK(n) : 0);
}

/** Tile of elements processed model by model, small enough for the scratch to stay in cache. */
const TILE = 2048;

/** e[t] = c * m[j] * (x[j] - b[j]) for one tile; d[t] = x[j] - b[j]. Three copies keep each call site monomorphic. */
function tileNoMask(x: Float32Array, b: Float32Array, c: number, j0: number, len: number, d: Float64Array, e: Float64Array, o: number): void {
  for (let t = 0; t < len; t++) {
    const v = x[j0 + t] - b[j0 + t];
    d[o + t] = v;
    e[o + t] = c * v;
  }
}
function tileU8(x: Float32Array, b: Float32Array, m: Uint8Array, c: number, j0: number, len: number, d: Float64Array, e: Float64Array, o: number): void {
  for (let t = 0; t < len; t++) {
    const v = x[j0 + t] - b[j0 + t];
    d[o + t] = v;
    e[o + t] = m[j0 + t] !== 0 ? c * v : 0;
  }
}
function tileF32(x: Float32Array, b: Float32Array, m: Float32Array, c: number, j0: number, len: number, d: Float64Array, e: Float64Array, o: number): void {
  for (let t = 0; t < len; t++) {
    const v = x[j0 + t] - b[j0 + t];
    d[o + t] = v;
    e[o + t] = c * m[j0 + t] * v;
  }
}

/**
 * Per-block state handed to the path functions; each path is its own function so V8 optimises its
 * loop on its own (one large function with several hot loops compiled noticeably worse).
 */
interface BlockCtx {
  a: CombineArgs;
  c: Float64Array;
  w: Float64Array;
  scalarDiv: number;
  g: Float64Array;
  dT: Float64Array;
  eT: Float64Array;
  /** Outputs of one block: [conflicts, mergedSq]. */
  res: Float64Array;
}

export function combineRange(a: CombineArgs, start: number, end: number, partials: Float64Array): void {
  const { models, masks, weights, consensus, gram } = a;
  const n = models.length;
  const K = combineK(n, gram);
  let wsum = 0;
  for (let i = 0; i < n; i++) wsum += weights[i];
  const allUnmasked = masks.every((m) => m === null);
  // Plain task arithmetic (no masks, no consensus) over one or two models has its own loops;
  // so do two models with 0/1 masks (ties, dare_ties, breadcrumbs over the usual pair).
  const plain = allUnmasked && !consensus && n <= 2;
  const pair = !plain && n === 2 && masks.every((m) => m === null || m instanceof Uint8Array);
  const general = !plain && !pair;
  const ctx: BlockCtx = {
    a,
    c: Float64Array.from(a.coeffs),
    w: Float64Array.from(weights),
    scalarDiv: Math.abs(wsum) < 1e-8 ? 1 : wsum,
    g: new Float64Array(gram ? gramK(n) : 0),
    dT: new Float64Array(general ? n * TILE : 0),
    eT: new Float64Array(general ? n * TILE : 0),
    res: new Float64Array(2),
  };
  for (let b0 = start; b0 < end; b0 += BLOCK) {
    const b1 = Math.min(b0 + BLOCK, end);
    ctx.g.fill(0);
    ctx.res.fill(0);
    if (plain && n === 1) blockPlain1(ctx, b0, b1);
    else if (plain) blockPlain2(ctx, b0, b1);
    else if (pair) blockPair(ctx, b0, b1, masks[0] as Uint8Array | null, masks[1] as Uint8Array | null);
    else blockGeneral(ctx, b0, b1);
    const off = Math.floor(b0 / BLOCK) * K;
    partials[off] = ctx.res[0];
    partials[off + 1] = ctx.res[1];
    for (let k = 0; k < ctx.g.length; k++) partials[off + 2 + k] = ctx.g[k];
  }
}

function blockPlain1(ctx: BlockCtx, b0: number, b1: number): void {
  const { base, models, normalize, lambda, gram, out } = ctx.a;
  const x = models[0];
  const f = (normalize ? ctx.c[0] / ctx.scalarDiv : ctx.c[0]) * lambda;
  let l1 = 0;
  let sq = 0;
  let mergedSq = 0;
  for (let j = b0; j < b1; j++) {
    const bb = base[j];
    const v = x[j] - bb;
    const r = v * f;
    mergedSq += r * r;
    l1 += Math.abs(v);
    sq += v * v;
    out[j] = bb + r;
  }
  ctx.res[1] = mergedSq;
  if (gram) {
    ctx.g[0] = l1;
    ctx.g[1] = sq;
  }
}

function blockPlain2(ctx: BlockCtx, b0: number, b1: number): void {
  const { base, models, normalize, lambda, gram, out } = ctx.a;
  const x0 = models[0];
  const x1 = models[1];
  const f = (normalize ? 1 / ctx.scalarDiv : 1) * lambda;
  const c0 = ctx.c[0];
  const c1 = ctx.c[1];
  let a0 = 0, a1 = 0, s00 = 0, s01 = 0, s11 = 0;
  let conflicts = 0;
  let mergedSq = 0;
  for (let j = b0; j < b1; j++) {
    const bb = base[j];
    const v0 = x0[j] - bb;
    const v1 = x1[j] - bb;
    const e0 = c0 * v0;
    const e1 = c1 * v1;
    conflicts += (+(e0 > 0) & +(e1 < 0)) | (+(e0 < 0) & +(e1 > 0));
    const r = (e0 + e1) * f;
    mergedSq += r * r;
    a0 += Math.abs(v0);
    a1 += Math.abs(v1);
    s00 += v0 * v0;
    s01 += v0 * v1;
    s11 += v1 * v1;
    out[j] = bb + r;
  }
  ctx.res[0] = conflicts;
  ctx.res[1] = mergedSq;
  if (gram) {
    ctx.g[0] = a0; ctx.g[1] = a1; ctx.g[2] = s00; ctx.g[3] = s01; ctx.g[4] = s11;
  }
}

/**
 * Two models, 0/1 masks (null = keep all). Branch-free on purpose: random masks and signs would
 * mispredict every other element. Multiplying by 0/1 flags gives the same values as the general
 * loop's conditional adds (0 + (+-0) is +0); dividing by a reciprocal differs from the general
 * loop's division by at most one float64 ulp, far below the final float32 rounding.
 */
function blockPair(ctx: BlockCtx, b0: number, b1: number, m0: Uint8Array | null, m1: Uint8Array | null): void {
  const { base, models, consensus, normalize, lambda, gram, out } = ctx.a;
  const x0 = models[0];
  const x1 = models[1];
  const c0 = ctx.c[0];
  const c1 = ctx.c[1];
  const w0 = ctx.w[0];
  const w1 = ctx.w[1];
  const scalarDiv = ctx.scalarDiv;
  const cons = consensus ? 1 : 0;
  // 1/divisor by which models matched (none, 0, 1, both); an exact 0 divisor counts as 1.
  const recip = (d: number) => (normalize ? 1 / (d === 0 ? 1 : d) : 1);
  const inv = Float64Array.of(recip(0), recip(w0), recip(w1), recip(w0 + w1));
  const invScalar = normalize ? 1 / scalarDiv : 1;
  let a0 = 0, a1 = 0, s00 = 0, s01 = 0, s11 = 0;
  let conflicts = 0;
  let mergedSq = 0;
  for (let j = b0; j < b1; j++) {
    const bb = base[j];
    const v0 = x0[j] - bb;
    const v1 = x1[j] - bb;
    const e0 = c0 * v0 * (m0 === null ? 1 : m0[j]);
    const e1 = c1 * v1 * (m1 === null ? 1 : m1[j]);
    const p0 = +(e0 > 0);
    const n0 = +(e0 < 0);
    const p1 = +(e1 > 0);
    const n1 = +(e1 < 0);
    conflicts += (p0 & n1) | (n0 & p1);
    let r: number;
    if (cons === 1) {
      const up = +(e0 + e1 >= 0);
      const k0 = up * p0 + (1 - up) * n0;
      const k1 = up * p1 + (1 - up) * n1;
      let mixed = 0 + k0 * e0;
      mixed += k1 * e1;
      // The divisor is one of four values (which models matched): a table of reciprocals avoids a
      // division per element.
      r = mixed * inv[k0 + 2 * k1];
    } else {
      r = (e0 + e1) * invScalar;
    }
    r *= lambda;
    mergedSq += r * r;
    out[j] = bb + r;
    a0 += Math.abs(v0);
    a1 += Math.abs(v1);
    s00 += v0 * v0;
    s01 += v0 * v1;
    s11 += v1 * v1;
  }
  ctx.res[0] = conflicts;
  ctx.res[1] = mergedSq;
  if (gram) {
    ctx.g[0] = a0; ctx.g[1] = a1; ctx.g[2] = s00; ctx.g[3] = s01; ctx.g[4] = s11;
  }
}

function blockGeneral(ctx: BlockCtx, b0: number, b1: number): void {
  const { base, models, masks, consensus, normalize, lambda, gram, out } = ctx.a;
  const n = models.length;
  const { c, w, g, dT, eT, scalarDiv } = ctx;
  let conflicts = 0;
  let mergedSq = 0;
  for (let j0 = b0; j0 < b1; j0 += TILE) {
    const len = Math.min(TILE, b1 - j0);
    for (let i = 0; i < n; i++) {
      const m = masks[i];
      if (m === null) tileNoMask(models[i], base, c[i], j0, len, dT, eT, i * TILE);
      else if (m instanceof Uint8Array) tileU8(models[i], base, m, c[i], j0, len, dT, eT, i * TILE);
      else tileF32(models[i], base, m, c[i], j0, len, dT, eT, i * TILE);
    }
    if (gram) {
      let k = n;
      for (let i = 0; i < n; i++) {
        const oi = i * TILE;
        let l1 = 0;
        for (let t = 0; t < len; t++) l1 += Math.abs(dT[oi + t]);
        g[i] += l1;
        for (let l = i; l < n; l++) {
          const ol = l * TILE;
          let s = 0;
          for (let t = 0; t < len; t++) s += dT[oi + t] * dT[ol + t];
          g[k++] += s;
        }
      }
    }
    for (let t = 0; t < len; t++) {
      let sum = 0;
      let anyPos = false;
      let anyNeg = false;
      for (let i = 0; i < n; i++) {
        const ev = eT[i * TILE + t];
        sum += ev;
        if (ev > 0) anyPos = true;
        else if (ev < 0) anyNeg = true;
      }
      if (anyPos && anyNeg) conflicts++;
      let mixed: number;
      let div: number;
      if (consensus) {
        // Elected sign: + when the sum is >= 0. A zero e_i matches neither sign.
        mixed = 0;
        div = 0;
        if (sum >= 0) {
          for (let i = 0; i < n; i++) {
            const ev = eT[i * TILE + t];
            if (ev > 0) { mixed += ev; div += w[i]; }
          }
        } else {
          for (let i = 0; i < n; i++) {
            const ev = eT[i * TILE + t];
            if (ev < 0) { mixed += ev; div += w[i]; }
          }
        }
        if (div === 0) div = 1;
      } else {
        mixed = sum;
        div = scalarDiv;
      }
      const r = (normalize ? mixed / div : mixed) * lambda;
      mergedSq += r * r;
      const j = j0 + t;
      out[j] = base[j] + r;
    }
  }
  ctx.res[0] = conflicts;
  ctx.res[1] = mergedSq;
}

export function weightedSumRange(arrays: Float32Array[], coeffs: number[], out: Float32Array, start: number, end: number): void {
  const n = arrays.length;
  if (n === 1) {
    const x = arrays[0];
    const c0 = coeffs[0];
    for (let j = start; j < end; j++) out[j] = c0 * x[j];
  } else if (n === 2) {
    const x0 = arrays[0];
    const x1 = arrays[1];
    const c0 = coeffs[0];
    const c1 = coeffs[1];
    for (let j = start; j < end; j++) out[j] = c0 * x0[j] + c1 * x1[j];
  } else {
    const c = Float64Array.from(coeffs);
    for (let j = start; j < end; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += c[i] * arrays[i][j];
      out[j] = s;
    }
  }
}

/** Bernoulli mask for [start, end); partial per block = kept count (K = 1). */
export function bernoulliRange(key: RngKey, p: number, out: Uint8Array, start: number, end: number, partials: Float64Array): void {
  for (let b0 = start; b0 < end; b0 += BLOCK) {
    const b1 = Math.min(b0 + BLOCK, end);
    partials[Math.floor(b0 / BLOCK)] = fillBernoulli(key, p, out.subarray(b0, b1), b0);
  }
}

export function deltaRange(x: Float32Array, base: Float32Array, out: Float32Array, start: number, end: number): void {
  for (let j = start; j < end; j++) out[j] = x[j] - base[j];
}

/**
 * Run every loop once on a few elements when the module loads. V8 compiles a long-running loop
 * on-stack before the code after it has ever run; without type feedback for that code the optimised
 * loop deoptimises on exit, and the cached on-stack code did so again on every block (measured:
 * the fused two-model loop ran 2.5x slower). A tiny first run gives every path its feedback.
 */
function warmUp(): void {
  const n = 64;
  const f = (k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k));
  const base = f(1);
  const xs = [f(2), f(3), f(4)];
  const u8 = Uint8Array.from({ length: n }, (_, i) => i & 1);
  const f32 = Float32Array.from(u8, (v) => v * 2);
  const partials = new Float64Array(64);
  const out = new Float32Array(n);
  const cases: Array<[Float32Array[], MaskArray[], boolean]> = [
    [xs.slice(0, 1), [null], false],
    [xs.slice(0, 2), [null, null], false],
    [xs.slice(0, 2), [u8, null], true],
    [xs.slice(0, 2), [u8, u8], false],
    [xs, [u8, f32, null], true],
  ];
  for (let rep = 0; rep < 2; rep++) {
    for (const [models, masks, consensus] of cases) {
      for (const gram of [false, true]) {
        combineRange(
          { base, models, masks, coeffs: models.map(() => 0.5), weights: models.map(() => 0.5), consensus, normalize: true, lambda: 1, gram, out },
          0, n, partials,
        );
        gramRange(models, base, 0, n, partials);
      }
    }
    for (const m of [null, u8, f32]) maskedL1Range(xs[0], base, m, 0, n, partials);
    countNonZero(u8);
    countNonZero(f32);
    weightedSumRange(xs.slice(0, 1), [0.5], out, 0, n);
    weightedSumRange(xs.slice(0, 2), [0.5, 0.5], out, 0, n);
    weightedSumRange(xs, [0.5, 0.5, 0.5], out, 0, n);
    deltaRange(xs[0], base, out, 0, n);
  }
}
warmUp();
