/**
 * The one kernel interface every merge method computes through. Two implementations cover it:
 * `typed.ts` (fused typed-array loops, split over worker threads for big tensors) and `tfjs.ts`
 * (TensorFlow.js ops on whichever tfjs backend loads). The same tests run against both.
 *
 * The primitives are shaped around the task-arithmetic family so the fast path reads each input
 * once per pass: deltas `d_i = X_i - B` are never materialised by the caller; kernels compute them
 * on the fly from the model and base arrays.
 *
 * Conventions:
 * - All arrays are float32 and the same length unless stated; results are float32, accumulations
 *   (norms, dots) are returned as JS numbers.
 * - A keep mask is a `Uint8Array` of 0/1. A `Float32Array` "scale mask" is a per-element
 *   multiplier (0 where dropped), used for della's per-element inverse-probability rescale.
 * - Random masks are never drawn by a backend's own RNG: they come from `rng.ts` so both backends
 *   (and every worker split) draw the same mask for the same key.
 * - Arrays may be backed by a SharedArrayBuffer (see `allocShared` in `typed.ts`); the typed
 *   backend only splits work over threads when every array of a call is shared, because copying
 *   into shared memory costs as much as the pass it would speed up.
 */
import type { HalfDType } from './convert.js';

export type { HalfDType };

/** 64-bit key of one random stream, as two unsigned 32-bit halves (see rng.ts `maskKey`). */
export interface RngKey {
  readonly k0: number;
  readonly k1: number;
}

/** A per-model mask: 0/1 keep flags, or a per-element multiplier (0 = dropped). `null` = keep all. */
export type Mask = Uint8Array | Float32Array | null;

/** Sums over the task vectors `d_i = X_i - B` (or over `X_i` themselves when `base` is null). */
export interface Gram {
  /** ||d_i||_1 per model. */
  l1: number[];
  /** ||d_i||_2^2 per model. */
  l2sq: number[];
  /** dot(d_i, d_j), a symmetric n x n matrix in row-major order (diagonal = l2sq). */
  dot: number[];
}

export interface CombineSpec {
  base: Float32Array;
  models: Float32Array[];
  /** Per model: which elements of d_i survive sparsification (and their per-element scale). */
  masks: Mask[];
  /**
   * Per model: scalar applied to the kept delta, `e_i = coeff_i * mask_i ⊙ d_i`.
   * The method folds the weight and any scalar rescale in here (w_i * ||d||_1/||d⊙m||_1, w_i/rho, w_i).
   */
  coeffs: number[];
  /** Per model: the plain weight w_i, summed into the divisor. */
  weights: number[];
  /** TIES sign consensus (elected sign of sum e_i, 0 counted as +1; a zero e_i never matches). */
  consensus: boolean;
  normalize: boolean;
  lambda: number;
  /** Also accumulate the Gram of the raw deltas (before masks) in the same pass, for diagnostics. */
  gram?: boolean;
}

export interface CombineResult {
  /** B + lambda * mixed (/ divisor when normalize). */
  out: Float32Array;
  /** Elements where two of the e_i are non-zero with opposite signs. */
  signConflicts: number;
  /** ||out - B||_2^2 computed before the final rounding (lambda and divisor applied). */
  mergedDeltaL2sq: number;
  /** Gram of the unmasked deltas X_i - B when `spec.gram` was set, else null. */
  gram: Gram | null;
}

export interface DellaMaskResult {
  /** 0/1 mask, or with `inverseProbability` a Float32Array holding 1/p where kept and 0 where dropped. */
  mask: Uint8Array | Float32Array;
  kept: number;
  /** Mean of 1/p over kept elements (diagnostics); 1 when nothing was kept. */
  meanInvP: number;
}

/**
 * A tensor seen as a `rows` x `cols` row-major matrix whose vectors run along its rows (each row is
 * one vector of `cols` elements) or along its columns (each column is one vector of `rows`).
 * nuslerp's per-row / per-column interpolation; a tensor of rank > 2 is [shape[0], rest] for columns
 * and [all but the last, last] for rows.
 */
export interface VectorLayout {
  rows: number;
  cols: number;
  along: 'rows' | 'cols';
}

/** Per vector (see VectorLayout): dot(a, b), |a|^2 and |b|^2 of `a - base`, `b - base` (of a, b when base is null). */
export interface VectorGram {
  dot: Float64Array;
  aa: Float64Array;
  bb: Float64Array;
}

/** The sign-consensus mean of sce (mergekit `sce_merge` after selection and weighting). */
export interface ConsensusMeanSpec {
  base: Float32Array;
  models: Float32Array[];
  /** Shared keep mask (1 = the position survives selection) applied to every `d_i`; null = keep all. */
  mask: Uint8Array | null;
  /** Per model: its weight in the mean (sce's matrix-level weight). */
  coeffs: number[];
  /** The divisor `sum of matching coeffs` is raised to at least this (mergekit clamps it at 1e-6). */
  minDivisor: number;
}

/** Per model: how many elements have |d_i| > epsilon, and of those how many no other model changes (unique) or some other does (shared). */
export interface RamStats {
  active: number[];
  unique: number[];
  shared: number[];
}

export interface Kernels {
  /** The backend actually running: 'typed', 'tfjs-wasm', 'tfjs-cpu', 'tfjs-node', 'tfjs-node-gpu'. */
  readonly name: string;

  /** l1, squared l2 and pairwise dots of `X_i - B` (of `X_i` when base is null), one pass. */
  gram(models: Float32Array[], base: Float32Array | null): Promise<Gram>;

  /**
   * Keep the elements of |x - base| whose position in ascending order lies in [lo, hi).
   * Order is total: ascending |d|, and at equal |d| the element with the HIGHER flat index comes
   * first (so "the k largest" keeps the lower indices among ties). Exactly hi - lo elements kept.
   * Magnitude top-k is rankBand(N-k, N); breadcrumbs is rankBand(n_bot, N-n_top).
   * Uses radix selection on float bit patterns, never a sort.
   */
  rankBandMask(x: Float32Array, base: Float32Array, lo: number, hi: number): Promise<Uint8Array>;

  /** Bernoulli(p) keep mask for elements [0, n) of the stream `key` (uniform u < p keeps). */
  bernoulliMask(key: RngKey, p: number, n: number): Promise<Uint8Array>;

  /**
   * della's magnitude-ranked Bernoulli mask over rows of length `rowLen` (last dimension):
   * p = (rho - eps) + 2 eps (r - r_min)/(r_max - r_min) with r the ascending rank of |x - base|
   * in its row (ties: lower index ranks lower). With `inverseProbability` the mask holds 1/p.
   */
  dellaMask(
    x: Float32Array,
    base: Float32Array,
    rowLen: number,
    rho: number,
    eps: number,
    key: RngKey,
    inverseProbability: boolean,
  ): Promise<DellaMaskResult>;

  /**
   * One pass: ||x - base||_1 (full), ||mask ⊙ (x - base)||_1 (kept; a scale mask multiplies) and
   * the number of elements with a non-zero mask.
   */
  maskedL1(x: Float32Array, base: Float32Array, mask: Mask): Promise<{ full: number; kept: number; count: number }>;

  /** The fused weight / consensus / normalize / lambda / add-base pass of the task-arithmetic family. */
  combine(spec: CombineSpec): Promise<CombineResult>;

  /** Per-vector Gram of two models against an optional base (nuslerp's row- or column-wise slerp). */
  vectorGram(a: Float32Array, b: Float32Array, base: Float32Array | null, layout: VectorLayout): Promise<VectorGram>;

  /** `base + c0[v] (a - base) + c1[v] (b - base)` for every element of vector v (`c0[v] a + c1[v] b` without a base). */
  vectorLerp(a: Float32Array, b: Float32Array, base: Float32Array | null, layout: VectorLayout, c0: Float64Array, c1: Float64Array): Promise<Float32Array>;

  /** nearswap: w = clamp(t / max(|x - base|, 1e-6), 0, 1) per element, result w x + (1 - w) base. */
  nearswap(base: Float32Array, x: Float32Array, t: number): Promise<Float32Array>;

  /** Population variance over the models of `d_i = X_i - B`, per element (sce's selection score). */
  deltaVariance(models: Float32Array[], base: Float32Array): Promise<Float32Array>;

  /** Per model: sum of `(mask ⊙ (X_i - B))^2` (mask null = all elements). */
  maskedSumSq(models: Float32Array[], base: Float32Array, mask: Uint8Array | null): Promise<number[]>;

  /**
   * `B + sum_i [match_i] c_i e_i / max(sum_i [match_i] c_i, minDivisor)` with `e_i = mask ⊙ d_i` and
   * match_i = e_i non-zero with the sign of `sum_i e_i` (0 counts as +): the election is unweighted.
   */
  consensusMean(spec: ConsensusMeanSpec): Promise<Float32Array>;

  /** RAM's per-model counts of changed elements, |X_i - B| > epsilon (the difference rounded to float32). */
  ramStats(models: Float32Array[], base: Float32Array, epsilon: number): Promise<RamStats>;

  /**
   * RAM's merge: per element, the changed deltas (|d_i| > epsilon) are averaged where several models
   * change it and taken times `uniqueScale[i]` where model i alone does; unchanged elements keep B.
   */
  ramCombine(models: Float32Array[], base: Float32Array, epsilon: number, uniqueScale: number[]): Promise<Float32Array>;

  /**
   * arcee_fusion's importance: |x - base| times KL(softmax(x row) + 1e-8 || softmax(base row) + 1e-8)
   * of its row (rows of length rowLen along the last dimension), in float32 as mergekit computes it;
   * a KL that rounds below 0 counts as 0, so every score is >= 0.
   */
  fusionImportance(x: Float32Array, base: Float32Array, rowLen: number): Promise<Float32Array>;

  /** `base + (x - base)` where `score >= threshold`, `base` elsewhere; and how many were taken from x. */
  thresholdMerge(x: Float32Array, base: Float32Array, score: Float32Array, threshold: number): Promise<{ out: Float32Array; kept: number }>;

  /** sum_i coeffs_i * arrays_i (linear, slerp, model_stock, passthrough scale). */
  weightedSum(arrays: Float32Array[], coeffs: number[]): Promise<Float32Array>;

  /**
   * Widen 16-bit floats to f32 in place: `buf`'s first 2 * buf.length bytes hold the values as
   * read from a checkpoint; afterwards buf holds them as f32 (exact).
   */
  widen16(dtype: HalfDType, buf: Float32Array): Promise<void>;

  /** `src` rounded to 16-bit floats (nearest even; NaN stays NaN) into `dst` (same length). */
  narrow16(dtype: HalfDType, src: Float32Array, dst: Uint16Array): Promise<void>;

  /** Release threads / backend memory. Kernels stay usable (they restart lazily). */
  dispose(): Promise<void>;

  /**
   * Optional. Hand every output and mask buffer returned since the previous call back for reuse by
   * later calls; the first call switches reuse on. The caller promises it no longer reads or
   * writes any of them (the merge engine calls it after writing each tensor). Backends whose
   * buffers are cheap to allocate need not implement it.
   */
  reuseBuffers?(): void;
}
