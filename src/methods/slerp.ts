/**
 * slerp between the base (v0) and one other model (v1), `t` global (gradients resolved by the engine).
 * The angle comes from the Frobenius-normalised tensors; the interpolation weights apply to the
 * unnormalised ones. Near-parallel tensors (|dot| > 0.9995) fall back to lerp, as mergekit does.
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { buildDiagnostics, cropToCommon, numel, requiredNumber, sameShape } from './common.js';
import { defineMethod } from './define.js';

const DOT_THRESHOLD = 0.9995;
/** mergekit leaves a tensor unnormalised when its norm is at most this. */
const NORM_EPS = 1e-8;

/** The two interpolation coefficients for v0 and v1 given their dot product and squared norms. */
export function slerpCoefficients(t: number, dot: number, sq0: number, sq1: number): { c0: number; c1: number; lerp: boolean } {
  const n0 = Math.sqrt(sq0);
  const n1 = Math.sqrt(sq1);
  const unitDot = dot / ((n0 > NORM_EPS ? n0 : 1) * (n1 > NORM_EPS ? n1 : 1));
  if (Math.abs(unitDot) > DOT_THRESHOLD) return { c0: 1 - t, c1: t, lerp: true };
  const theta = Math.acos(unitDot);
  const s = Math.sin(theta);
  return { c0: Math.sin((1 - t) * theta) / s, c1: Math.sin(t * theta) / s, lerp: false };
}

export const slerp = defineMethod({
  name: 'slerp',
  random: false,
  needsBase: true,
  models: { min: 1, max: 1 },
  globalParams: z.object({ t: z.number({ error: requiredNumber('t') }) }),
  modelParams: z.object({}),
  async merge(input) {
    const { tensor, kernels, base } = input;
    const { t } = input.global;
    const warnings: string[] = [];
    // mergekit passes the one tensor through when only one model has it.
    if (input.models.length === 0) return { data: base.slice(), shape: [...input.shape], diagnostics: null, warnings };
    if (input.models.length !== 1) {
      throw new UserError(`slerp merges exactly two models (the base and one other); tensor ${tensor} got ${input.models.length + 1}`);
    }
    const all = [{ ref: input.baseRef, data: base, shape: input.shape }, input.models[0]];
    if (!sameShape(all[0].shape, all[1].shape) && !input.isEmbedding) {
      throw new UserError(`slerp: tensor ${tensor} has shape [${all[0].shape}] in the base but [${all[1].shape}] in ${input.models[0].ref}`);
    }
    const { shape, data } = cropToCommon(tensor, all, warnings);
    const [v0, v1] = data;
    const raw = await kernels.gram([v0, v1], null);
    const { c0, c1 } = slerpCoefficients(t, raw.dot[1], raw.l2sq[0], raw.l2sq[1]);
    const out = await kernels.weightedSum([v0, v1], [c0, c1]);

    const N = numel(shape);
    const d = await kernels.gram([v1, out], v0);
    const diagnostics = buildDiagnostics({
      tensor,
      refs: [input.models[0].ref],
      numel: N,
      gram: { l1: [d.l1[0]], l2sq: [d.l2sq[0]], dot: [d.l2sq[0]] },
      kept: [N],
      rescale: [1],
      signConflicts: 0,
      mergedDeltaL2sq: d.l2sq[1],
    });
    return { data: out, shape, diagnostics, warnings };
  },
});
