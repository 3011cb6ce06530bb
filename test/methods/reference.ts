/**
 * An independent, deliberately naive implementation of spec §1 (full sorts, per-element loops,
 * float64 throughout, rounded once), used as the oracle for the method tests. Random masks use the
 * project's rng through its public stream definition: keep element i when uniform(key, i) < p.
 */
import { fillUniform, maskKey } from '../../src/kernels/rng.js';

export interface RefModel {
  ref: string;
  x: Float32Array;
  weight: number;
  density?: number;
  gamma?: number;
  epsilon?: number;
}

export interface RefConfig {
  sparsifier: 'none' | 'magnitude' | 'random' | 'magnitude_outliers' | 'della_magprune';
  consensus: boolean;
  normalize: boolean;
  rescale: 'l1' | 'inverse_density' | 'none';
  lambda: number;
  seed: number;
  stage: string;
  tensor: string;
  shape: number[];
}

function uniforms(seed: number, stage: string, model: string, tensor: string, n: number): Float32Array {
  return fillUniform(maskKey(seed, stage, model, tensor), new Float32Array(n));
}

/** d' for one model (float64), following step 2 literally. */
export function refSparsify(d: number[], m: RefModel, c: RefConfig): number[] {
  const N = d.length;
  const rho = m.density ?? 1;
  if (c.sparsifier === 'none' || rho >= 1) return d.slice();
  const df = d.map(Math.fround); // selection ranks the float32 deltas
  let keep: number[]; // multiplier per element before the scalar rescale
  let perElementP: number[] | null = null;
  if (c.sparsifier === 'magnitude') {
    const k = Math.floor(rho * N);
    const desc = df.map((_, i) => i).sort((a, b) => Math.abs(df[b]) - Math.abs(df[a]) || a - b);
    keep = new Array(N).fill(0);
    for (let p = 0; p < k; p++) keep[desc[p]] = 1;
  } else if (c.sparsifier === 'magnitude_outliers') {
    const gamma = m.gamma ?? 0.01;
    let nTop = Math.floor(gamma * N);
    let nBot = N - Math.floor(rho * N) - nTop;
    if (nBot < 0) {
      nTop += nBot;
      nBot = 0;
    }
    const asc = df.map((_, i) => i).sort((a, b) => Math.abs(df[a]) - Math.abs(df[b]) || b - a);
    keep = new Array(N).fill(0);
    for (let p = nBot; p < N - nTop; p++) keep[asc[p]] = 1;
  } else if (c.sparsifier === 'random') {
    const u = uniforms(c.seed, c.stage, m.ref, c.tensor, N);
    keep = Array.from(u, (v) => (v < rho ? 1 : 0));
  } else {
    const eps = m.epsilon ?? 0.15;
    const rowLen = c.shape[c.shape.length - 1];
    const u = uniforms(c.seed, c.stage, m.ref, c.tensor, N);
    keep = new Array(N).fill(0);
    perElementP = new Array(N).fill(1);
    for (let r0 = 0; r0 < N; r0 += rowLen) {
      const idx = Array.from({ length: rowLen }, (_, j) => r0 + j).sort((a, b) => Math.abs(df[a]) - Math.abs(df[b]) || a - b);
      idx.forEach((i, r) => {
        const p = rowLen > 1 ? rho - eps + (2 * eps * r) / (rowLen - 1) : rho;
        perElementP![i] = p;
        keep[i] = u[i] < p ? 1 : 0;
      });
    }
  }
  const masked = d.map((v, i) => v * keep[i]);
  if (c.rescale === 'l1') {
    const before = d.reduce((a, v) => a + Math.abs(v), 0);
    const after = masked.reduce((a, v) => a + Math.abs(v), 0);
    if (before < 1e-7 || after < 1e-7) return masked;
    return masked.map((v) => (v * before) / after);
  }
  if (c.rescale === 'inverse_density') {
    return perElementP ? masked.map((v, i) => v / perElementP![i]) : masked.map((v) => v / rho);
  }
  return masked;
}

export function refTaskArithmetic(base: Float32Array, models: RefModel[], c: RefConfig): Float32Array {
  const N = base.length;
  if (models.length === 0) return base.slice();
  const dp = models.map((m) => refSparsify(Array.from(m.x, (v, i) => v - base[i]), m, c));
  const out = new Float32Array(N);
  const wsum = models.reduce((a, m) => a + m.weight, 0);
  for (let j = 0; j < N; j++) {
    const e = models.map((m, i) => m.weight * dp[i][j]);
    const sum = e.reduce((a, b) => a + b, 0);
    let mixed = sum;
    let div = Math.abs(wsum) < 1e-8 ? 1 : wsum;
    if (c.consensus) {
      const s = sum >= 0 ? 1 : -1;
      mixed = 0;
      div = 0;
      e.forEach((v, i) => {
        if (v !== 0 && Math.sign(v) === s) {
          mixed += v;
          div += models[i].weight;
        }
      });
      if (div === 0) div = 1;
    }
    if (c.normalize) mixed /= div;
    out[j] = base[j] + c.lambda * mixed;
  }
  return out;
}
