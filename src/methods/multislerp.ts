/**
 * multislerp (mergekit `multislerp`): barycentric interpolation on the hypersphere. With v_i the
 * flattened tensors (the task vectors X_i - B when base_model is given) and w_i the weights
 * (divided by their sum when normalize_weights, the default):
 *   u_i = v_i / (|v_i| + eps); m = sum w_i u_i normalised; tangent T = sum w_i (u_i - (u_i . m) m);
 *   r = m cos|T| + T sin|T| / |T| (|T| taken + eps); result = r * sum_i w_i |v_i|  (+ B).
 * Every vector involved is a combination of the v_i, so the method works on their Gram matrix and
 * writes the result with one weighted pass: exact in float64 up to the final rounding.
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { diagnoseAgainstBase } from './against-base.js';
import { alignToBase, cropToCommon, requiredNumber, sameShape } from './common.js';
import { defineMethod } from './define.js';

/** G as an n x n row-major matrix; returns x^T G y. */
function quad(G: number[], n: number, x: number[], y: number[]): number {
  let s = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s += x[i] * G[i * n + j] * y[j];
  return s;
}

export type MultislerpCoefficients = { ok: true; coeffs: number[] } | { ok: false; reason: string };

/**
 * The coefficients c_i with result = sum c_i v_i, from the Gram matrix of the v_i and the weights
 * (already normalised if they are to be). Antipodal inputs whose weighted unit mean vanishes fall
 * back to the weighted sum for two models, and are an error for more, as in mergekit.
 */
export function multislerpCoefficients(G: number[], weights: number[], eps: number): MultislerpCoefficients {
  const n = weights.length;
  const norms = weights.map((_, i) => Math.sqrt(Math.max(G[i * n + i], 0)));
  const a = weights.map((w, i) => w / (norms[i] + eps));
  const meanNorm = Math.sqrt(Math.max(quad(G, n, a, a), 0));
  if (meanNorm < eps) {
    if (n === 2) return { ok: true, coeffs: [...weights] };
    return { ok: false, reason: 'the weighted mean of the unit tensors is zero (antipodal tensors whose weights balance out); change the weights' };
  }
  const m = a.map((v) => v / meanNorm);
  // u_i . m = (G m)_i / (|v_i| + eps)
  const dots = a.map((_, i) => {
    let s = 0;
    for (let j = 0; j < n; j++) s += G[i * n + j] * m[j];
    return s / (norms[i] + eps);
  });
  const S = weights.reduce((acc, w, i) => acc + w * dots[i], 0);
  const T = a.map((v, i) => v - S * m[i]);
  const tn = Math.sqrt(Math.max(quad(G, n, T, T), 0)) + eps;
  const avg = weights.reduce((acc, w, i) => acc + w * norms[i], 0);
  return { ok: true, coeffs: m.map((mi, i) => avg * (mi * Math.cos(tn) + (T[i] * Math.sin(tn)) / tn)) };
}

export const multislerp = defineMethod({
  name: 'multislerp',
  random: false,
  needsBase: false,
  optionalBase: 'reference',
  models: { min: 1 },
  globalParams: z.object({
    normalize_weights: z.boolean().default(true),
    eps: z.number().default(1e-8),
  }),
  modelParams: z.object({ weight: z.number({ error: requiredNumber('weight') }) }),
  async merge(input) {
    const { tensor, kernels, base } = input;
    const g = input.global;
    const warnings: string[] = [];
    // The base is the origin here, never among the models (src/merge/plan.ts keeps it apart).
    const listed = input.models;
    if (listed.length === 0) {
      if (base) return { data: base.slice(), shape: [...input.shape], diagnostics: null, warnings };
      throw new UserError(`multislerp: no model provides tensor ${tensor}`);
    }
    // mergekit returns a lone model's tensor as it is, even with a base.
    if (listed.length === 1) return { data: listed[0].data.slice(), shape: [...listed[0].shape], diagnostics: null, warnings };
    let models: typeof listed;
    let shape: number[];
    if (base) {
      models = alignToBase(tensor, input.shape, listed, input.isEmbedding, warnings);
      shape = [...input.shape];
      if (models.length === 0) return { data: base.slice(), shape, diagnostics: null, warnings };
      if (models.length === 1) return { data: models[0].data.slice(), shape, diagnostics: null, warnings };
    } else {
      if (listed.some((m) => !sameShape(m.shape, listed[0].shape)) && !input.isEmbedding) {
        throw new UserError(`multislerp: tensor ${tensor} has different shapes: ${listed.map((m) => `${m.ref} [${m.shape}]`).join(', ')}`);
      }
      const c = cropToCommon(tensor, listed, warnings);
      shape = c.shape;
      models = listed.map((m, i) => ({ ...m, data: c.data[i], shape: c.shape }));
    }
    let weights = models.map((m) => m.params.weight);
    if (g.normalize_weights) {
      const sum = weights.reduce((a, b) => a + b, 0);
      if (sum === 0) {
        throw new UserError(`multislerp: the weights of tensor ${tensor} sum to 0, so they cannot be normalized (set normalize_weights: false or change the weights)`, { field: 'weight' });
      }
      weights = weights.map((w) => w / sum);
    }
    const data = models.map((m) => m.data);
    const gram = await kernels.gram(data, base);
    const c = multislerpCoefficients(gram.dot, weights, g.eps);
    if (!c.ok) throw new UserError(`multislerp: tensor ${tensor}: ${c.reason}`, { field: 'weight' });
    const out = base
      ? (await kernels.combine({ base, models: data, masks: data.map(() => null), coeffs: c.coeffs, weights: c.coeffs, consensus: false, normalize: false, lambda: 1 })).out
      : await kernels.weightedSum(data, c.coeffs);
    const diagnostics = base ? await diagnoseAgainstBase({ tensor, kernels, base, refs: models.map((m) => m.ref), models: data, out }) : null;
    return { data: out, shape, diagnostics, warnings };
  },
});
