/**
 * nuslerp (mergekit `NuSlerpTask`, `nuslerp`): slerp of exactly two models with t = w_1 / (w_0 + w_1)
 * (0.5 when the weights sum to less than 1e-6 in magnitude). With a base_model the two task vectors
 * X_i - B are interpolated and added back to B; the base is never one of the two.
 *
 * `nuslerp_flatten` (default true) treats the tensor as one vector. Otherwise each vector along the
 * last dimension (each row of a 2-D weight) is interpolated on its own, or, with `nuslerp_row_wise`,
 * each vector along the first dimension: mergekit's code takes dim 0 when row_wise is set, which
 * for a [out, in] weight is its columns (its docs say the opposite; we follow the code).
 * Norms are clamped below at 1e-7 before the angle is taken, and |sin theta| < 1e-8 falls back to lerp.
 */
import { z } from 'zod';
import type { VectorLayout } from '../kernels/types.js';
import { UserError } from '../util/errors.js';
import { diagnoseAgainstBase } from './against-base.js';
import { alignToBase, cropToCommon, numel, requiredNumber, sameShape } from './common.js';
import { defineMethod } from './define.js';

/** The interpolation factor from the two weights. */
export function nuslerpT(w0: number, w1: number): number {
  const s = w0 + w1;
  return Math.abs(s) < 1e-6 ? 0.5 : w1 / s;
}

/** Coefficients of v0 and v1 for one vector pair, from their dot product and squared norms. */
export function nuslerpCoefficients(t: number, dot: number, aa: number, bb: number): { c0: number; c1: number } {
  const na = Math.max(Math.sqrt(aa), 1e-7);
  const nb = Math.max(Math.sqrt(bb), 1e-7);
  const theta = Math.acos(Math.min(1, Math.max(-1, dot / (na * nb))));
  const s = Math.sin(theta);
  if (Math.abs(s) < 1e-8) return { c0: 1 - t, c1: t };
  return { c0: Math.sin((1 - t) * theta) / s, c1: Math.sin(t * theta) / s };
}

/** Which vectors of a tensor of `shape` are interpolated one by one. */
export function nuslerpLayout(shape: readonly number[], flatten: boolean, rowWise: boolean): VectorLayout {
  const N = numel(shape);
  if (flatten || shape.length <= 1) return { rows: 1, cols: N, along: 'rows' };
  if (rowWise) return { rows: shape[0], cols: N / shape[0], along: 'cols' };
  const last = shape[shape.length - 1];
  return { rows: N / last, cols: last, along: 'rows' };
}

export const nuslerp = defineMethod({
  name: 'nuslerp',
  random: false,
  needsBase: false,
  optionalBase: 'reference',
  models: { min: 2, max: 2 },
  globalParams: z.object({
    nuslerp_row_wise: z.boolean().default(false),
    nuslerp_flatten: z.boolean().default(true),
  }),
  modelParams: z.object({ weight: z.number({ error: requiredNumber('weight') }) }),
  async merge(input) {
    const { tensor, kernels, base } = input;
    const g = input.global;
    const warnings: string[] = [];
    const listed = input.models; // the two models; a base is only the origin of their task vectors
    if (listed.length === 1 && !base) return { data: listed[0].data.slice(), shape: [...listed[0].shape], diagnostics: null, warnings };
    if (listed.length !== 2) {
      throw new UserError(`nuslerp merges exactly two models${base ? ' besides base_model' : ''}; tensor ${tensor} got ${listed.length}`);
    }
    const [w0, w1] = listed.map((m) => m.params.weight);
    const t = nuslerpT(w0, w1);
    let models: typeof listed;
    let shape: number[];
    if (base) {
      models = alignToBase(tensor, input.shape, listed, input.isEmbedding, warnings);
      shape = [...input.shape];
      if (models.length !== 2) return { data: base.slice(), shape, diagnostics: null, warnings };
    } else {
      if (!sameShape(listed[0].shape, listed[1].shape) && !input.isEmbedding) {
        throw new UserError(`nuslerp: tensor ${tensor} has shape [${listed[0].shape}] in ${listed[0].ref} but [${listed[1].shape}] in ${listed[1].ref}`);
      }
      const c = cropToCommon(tensor, listed, warnings);
      shape = c.shape;
      models = listed.map((m, i) => ({ ...m, data: c.data[i], shape: c.shape }));
    }
    const layout = nuslerpLayout(shape, g.nuslerp_flatten, g.nuslerp_row_wise);
    const [a, b] = models.map((m) => m.data);
    const vg = await kernels.vectorGram(a, b, base, layout);
    const c0 = new Float64Array(vg.dot.length);
    const c1 = new Float64Array(vg.dot.length);
    for (let v = 0; v < c0.length; v++) {
      const c = nuslerpCoefficients(t, vg.dot[v], vg.aa[v], vg.bb[v]);
      c0[v] = c.c0;
      c1[v] = c.c1;
    }
    const out = await kernels.vectorLerp(a, b, base, layout, c0, c1);
    const diagnostics = base ? await diagnoseAgainstBase({ tensor, kernels, base, refs: models.map((m) => m.ref), models: [a, b], out }) : null;
    return { data: out, shape, diagnostics, warnings };
  },
});
