/**
 * karcher (mergekit `karcher_merge_tensors`): the Riemannian (Karcher) mean of the models' unit
 * tensors with equal weights, scaled by the mean of their norms. A tensor whose norm is at most
 * `tol` is left out of the mean (its norm still counts in the scale); the iteration starts at the
 * normalised arithmetic mean and moves along the mean of the log maps until the step is below `tol`
 * or `max_iter` steps were taken.
 *
 * mergekit adds a base_model that the recipe does not list to the models, and karcher then averages
 * it like the others, so it is merged here too (last, where mergekit puts it).
 *
 * Every iterate is a combination of the inputs, so the iteration runs on their Gram matrix (float64)
 * and the result is written with one weighted pass.
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { cropToCommon, sameShape } from './common.js';
import { defineMethod } from './define.js';

export interface KarcherResult {
  /** result = sum_i coeffs_i X_i. */
  coeffs: number[];
  /** Steps taken (max_iter when it did not converge). */
  iterations: number;
}

/** The Karcher mean's coefficients over the inputs from their Gram matrix G (x_i . x_j), equal weights. */
export function karcherCoefficients(G: number[], maxIter: number, tol: number): KarcherResult {
  const n = Math.round(Math.sqrt(G.length));
  const norms = Array.from({ length: n }, (_, i) => Math.sqrt(Math.max(G[i * n + i], 0)));
  const valid = norms.map((_, i) => i).filter((i) => norms[i] > tol);
  const coeffs = new Array<number>(n).fill(0);
  if (valid.length === 0) return { coeffs, iterations: 0 };
  const m = valid.length;
  // Gram of the unit vectors u_k = x_valid[k] / |x_valid[k]|.
  const U = new Array<number>(m * m);
  for (let p = 0; p < m; p++) for (let q = 0; q < m; q++) U[p * m + q] = G[valid[p] * n + valid[q]] / (norms[valid[p]] * norms[valid[q]]);
  const norm = (c: number[]) => {
    let s = 0;
    for (let p = 0; p < m; p++) for (let q = 0; q < m; q++) s += c[p] * U[p * m + q] * c[q];
    return Math.sqrt(Math.max(s, 0));
  };
  const alpha = 1 / m;
  let u = new Array<number>(m).fill(alpha);
  const nu = norm(u);
  if (nu < tol) {
    u = new Array<number>(m).fill(0);
    u[0] = 1;
  } else u = u.map((v) => v / nu);
  let iterations = 0;
  for (let it = 0; it < maxIter; it++) {
    iterations = it + 1;
    const T = new Array<number>(m).fill(0);
    for (let k = 0; k < m; k++) {
      let dot = 0;
      for (let q = 0; q < m; q++) dot += U[k * m + q] * u[q];
      dot = Math.min(1, Math.max(-1, dot));
      const theta = Math.acos(dot);
      if (theta < tol) continue;
      const f = (alpha * theta) / Math.sin(theta);
      for (let q = 0; q < m; q++) T[q] += f * ((q === k ? 1 : 0) - dot * u[q]);
    }
    const nT = norm(T);
    if (nT < tol) break;
    u = u.map((v, q) => Math.cos(nT) * v + (Math.sin(nT) * T[q]) / nT);
    const nu2 = norm(u);
    if (nu2 > tol) u = u.map((v) => v / nu2);
  }
  // Scale: the mean norm over every input, zero-norm ones included.
  const s = norms.reduce((a, b) => a + b, 0) / n;
  valid.forEach((i, k) => (coeffs[i] = (s * u[k]) / norms[i]));
  return { coeffs, iterations };
}

export const karcher = defineMethod({
  name: 'karcher',
  random: false,
  needsBase: false,
  models: { min: 1 },
  globalParams: z.object({
    max_iter: z.number().int({ error: 'max_iter must be a whole number' }).nonnegative().default(10),
    tol: z.number().default(1e-5),
  }),
  modelParams: z.object({}),
  async merge(input) {
    const { tensor, kernels } = input;
    const g = input.global;
    const warnings: string[] = [];
    const all: Array<{ ref: string; data: Float32Array; shape: number[] }> = [...input.models];
    if (input.base && input.baseRef !== null && !all.some((m) => m.ref === input.baseRef)) {
      all.push({ ref: input.baseRef, data: input.base, shape: [...input.shape] });
    }
    if (all.length === 0) throw new UserError(`karcher: no model provides tensor ${tensor}`);
    if (all.length === 1) return { data: all[0].data.slice(), shape: [...all[0].shape], diagnostics: null, warnings };
    if (all.some((m) => !sameShape(m.shape, all[0].shape)) && !input.isEmbedding) {
      throw new UserError(`karcher: tensor ${tensor} has different shapes: ${all.map((m) => `${m.ref} [${m.shape}]`).join(', ')}`);
    }
    const { shape, data } = cropToCommon(tensor, all, warnings);
    const gram = await kernels.gram(data, null);
    const { coeffs } = karcherCoefficients(gram.dot, g.max_iter, g.tol);
    const out = await kernels.weightedSum(data, coeffs);
    return { data: out, shape, diagnostics: null, warnings };
  },
});
