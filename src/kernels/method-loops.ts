/**
 * Typed-array loops for the kernel ops of the newer mergekit methods (nuslerp, nearswap, sce, ram,
 * ramplus_tl, arcee_fusion). They run on the calling thread: each is one or two passes over the
 * inputs, cheap next to reading the checkpoint, and none of them has been measured as the bottleneck.
 *
 * Values accumulate in float64 and are rounded once to float32. Where mergekit takes a decision on a
 * float32 value (a threshold, a comparison), the value is rounded to float32 first and compared with
 * the threshold rounded to float32, as PyTorch compares a float32 tensor with a Python scalar, so
 * the same elements are selected.
 */
import type { ConsensusMeanSpec, RamStats, VectorGram, VectorLayout } from './types.js';

const fround = Math.fround;

function checkLayout(n: number, layout: VectorLayout): void {
  if (!(Number.isInteger(layout.rows) && Number.isInteger(layout.cols) && layout.rows * layout.cols === n)) {
    throw new RangeError(`vector layout ${layout.rows} x ${layout.cols} does not cover ${n} elements`);
  }
}

export function vectorCount(layout: VectorLayout): number {
  return layout.along === 'rows' ? layout.rows : layout.cols;
}

export function vectorGramLoop(a: Float32Array, b: Float32Array, base: Float32Array | null, layout: VectorLayout): VectorGram {
  checkLayout(a.length, layout);
  const { rows, cols, along } = layout;
  const nv = vectorCount(layout);
  const dot = new Float64Array(nv);
  const aa = new Float64Array(nv);
  const bb = new Float64Array(nv);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    if (along === 'rows') {
      let s = 0;
      let sa = 0;
      let sb = 0;
      for (let c = 0; c < cols; c++) {
        const z = base ? base[o + c] : 0;
        const va = a[o + c] - z;
        const vb = b[o + c] - z;
        s += va * vb;
        sa += va * va;
        sb += vb * vb;
      }
      dot[r] = s;
      aa[r] = sa;
      bb[r] = sb;
    } else {
      for (let c = 0; c < cols; c++) {
        const z = base ? base[o + c] : 0;
        const va = a[o + c] - z;
        const vb = b[o + c] - z;
        dot[c] += va * vb;
        aa[c] += va * va;
        bb[c] += vb * vb;
      }
    }
  }
  return { dot, aa, bb };
}

export function vectorLerpLoop(
  a: Float32Array,
  b: Float32Array,
  base: Float32Array | null,
  layout: VectorLayout,
  c0: Float64Array,
  c1: Float64Array,
  out: Float32Array,
): void {
  checkLayout(a.length, layout);
  const { rows, cols, along } = layout;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = along === 'rows' ? r : c;
      const z = base ? base[o + c] : 0;
      out[o + c] = z + c0[v] * (a[o + c] - z) + c1[v] * (b[o + c] - z);
    }
  }
}

/** mergekit `nearswap_merge`: the weight comes from |base - x| clamped below at 1e-6 (as float32). */
export function nearswapLoop(base: Float32Array, x: Float32Array, t: number, out: Float32Array): void {
  const floor = fround(1e-6);
  for (let j = 0; j < base.length; j++) {
    const d = Math.max(Math.abs(x[j] - base[j]), floor);
    const w = Math.min(1, Math.max(0, t / d));
    out[j] = w * x[j] + (1 - w) * base[j];
  }
}

export function deltaVarianceLoop(models: Float32Array[], base: Float32Array, out: Float32Array): void {
  const n = models.length;
  const d = new Float64Array(n);
  for (let j = 0; j < base.length; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) {
      d[i] = models[i][j] - base[j];
      mean += d[i];
    }
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (d[i] - mean) * (d[i] - mean);
    out[j] = v / n;
  }
}

export function maskedSumSqLoop(models: Float32Array[], base: Float32Array, mask: Uint8Array | null): number[] {
  return models.map((x) => {
    let s = 0;
    for (let j = 0; j < base.length; j++) {
      const v = x[j] - base[j];
      s += mask === null || mask[j] !== 0 ? v * v : 0;
    }
    return s;
  });
}

export function consensusMeanLoop(spec: ConsensusMeanSpec, out: Float32Array): void {
  const { base, models, mask, coeffs, minDivisor } = spec;
  const n = models.length;
  const e = new Float64Array(n);
  for (let j = 0; j < base.length; j++) {
    const keep = mask === null || mask[j] !== 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      e[i] = keep ? models[i][j] - base[j] : 0;
      sum += e[i];
    }
    const up = sum >= 0;
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      if (e[i] !== 0 && (e[i] > 0) === up) {
        num += coeffs[i] * e[i];
        den += coeffs[i];
      }
    }
    out[j] = base[j] + num / Math.max(den, minDivisor);
  }
}

/** Which models change element j (|d| > eps on the float32 difference): a bit per model. */
function changedBits(models: Float32Array[], base: Float32Array, j: number, eps: number): number {
  let bits = 0;
  for (let i = 0; i < models.length; i++) if (Math.abs(fround(models[i][j] - base[j])) > eps) bits |= 1 << i;
  return bits;
}

function popcount(v: number): number {
  let c = 0;
  for (let x = v; x !== 0; x &= x - 1) c++;
  return c;
}

function checkRamModels(n: number): void {
  if (n > 30) throw new RangeError(`ram: ${n} models; at most 30 are supported`);
}

export function ramStatsLoop(models: Float32Array[], base: Float32Array, epsilon: number): RamStats {
  const n = models.length;
  checkRamModels(n);
  const eps = fround(epsilon);
  const active = new Array<number>(n).fill(0);
  const unique = new Array<number>(n).fill(0);
  const shared = new Array<number>(n).fill(0);
  for (let j = 0; j < base.length; j++) {
    const bits = changedBits(models, base, j, eps);
    if (bits === 0) continue;
    const count = popcount(bits);
    for (let i = 0; i < n; i++) {
      if ((bits & (1 << i)) === 0) continue;
      active[i]++;
      if (count === 1) unique[i]++;
      else shared[i]++;
    }
  }
  return { active, unique, shared };
}

export function ramCombineLoop(models: Float32Array[], base: Float32Array, epsilon: number, uniqueScale: number[], out: Float32Array): void {
  const n = models.length;
  checkRamModels(n);
  const eps = fround(epsilon);
  for (let j = 0; j < base.length; j++) {
    const bits = changedBits(models, base, j, eps);
    if (bits === 0) {
      out[j] = base[j];
      continue;
    }
    const count = popcount(bits);
    let s = 0;
    for (let i = 0; i < n; i++) {
      if ((bits & (1 << i)) === 0) continue;
      const d = models[i][j] - base[j];
      s += count === 1 ? uniqueScale[i] * d : d / count;
    }
    out[j] = base[j] + s;
  }
}

/** KL(p || q) of one row with p = softmax(x) + 1e-8 and q = softmax(base) + 1e-8 (mergekit `_compute_importance`). */
function rowKL(x: Float32Array, base: Float32Array, o: number, len: number): number {
  let mx = -Infinity;
  let mb = -Infinity;
  for (let c = 0; c < len; c++) {
    if (x[o + c] > mx) mx = x[o + c];
    if (base[o + c] > mb) mb = base[o + c];
  }
  let sx = 0;
  let sb = 0;
  for (let c = 0; c < len; c++) {
    sx += Math.exp(x[o + c] - mx);
    sb += Math.exp(base[o + c] - mb);
  }
  let kl = 0;
  for (let c = 0; c < len; c++) {
    const p = Math.exp(x[o + c] - mx) / sx + 1e-8;
    const q = Math.exp(base[o + c] - mb) / sb + 1e-8;
    kl += p * Math.log(p / q);
  }
  return kl;
}

export function fusionImportanceLoop(x: Float32Array, base: Float32Array, rowLen: number, out: Float32Array): void {
  const N = base.length;
  if (!(rowLen >= 1 && N % rowLen === 0)) throw new RangeError(`fusionImportance: ${N} elements are not rows of ${rowLen}`);
  for (let o = 0; o < N; o += rowLen) {
    // KL is never negative; a rounding just below 0 would put the row's scores below untouched ones.
    const kl = fround(Math.max(0, rowKL(x, base, o, rowLen)));
    for (let c = 0; c < rowLen; c++) out[o + c] = Math.abs(fround(x[o + c] - base[o + c])) * kl;
  }
}

/** Kept elements are `base + (x - base)` in float32 arithmetic, as mergekit adds the masked delta back. */
export function thresholdMergeLoop(x: Float32Array, base: Float32Array, score: Float32Array, threshold: number, out: Float32Array): number {
  const thr = fround(threshold);
  let kept = 0;
  for (let j = 0; j < base.length; j++) {
    if (score[j] >= thr) {
      out[j] = base[j] + fround(x[j] - base[j]);
      kept++;
    } else out[j] = base[j];
  }
  return kept;
}
