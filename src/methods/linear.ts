/** linear: R = sum_i w_i X_i, divided by sum_i w_i when `normalize` (default true). */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { buildDiagnostics, cropToCommon, numel, requiredNumber, sameShape } from './common.js';
import { defineMethod } from './define.js';

export const linear = defineMethod({
  name: 'linear',
  random: false,
  needsBase: false,
  models: { min: 1 },
  globalParams: z.object({ normalize: z.boolean().default(true) }),
  modelParams: z.object({ weight: z.number({ error: requiredNumber('weight') }) }),
  async merge(input) {
    const { tensor, kernels } = input;
    const warnings: string[] = [];
    if (input.models.length === 0) throw new UserError(`linear: no model provides tensor ${tensor}`);
    const shapesDiffer = input.models.some((m) => !sameShape(m.shape, input.models[0].shape));
    if (shapesDiffer && !input.isEmbedding) {
      throw new UserError(`linear: tensor ${tensor} has different shapes: ${input.models.map((m) => `${m.ref} [${m.shape}]`).join(', ')}`);
    }
    const { shape, data } = cropToCommon(tensor, input.models, warnings);
    const weights = input.models.map((m) => m.params.weight);
    let divisor = 1;
    if (input.global.normalize) {
      divisor = weights.reduce((a, b) => a + b, 0);
      if (Math.abs(divisor) < 1e-8) {
        throw new UserError(`linear: the weights of tensor ${tensor} sum to ${divisor}; cannot normalize (set normalize: false or change the weights)`, { field: 'weight' });
      }
    }
    const out = await kernels.weightedSum(data, weights.map((w) => w / divisor));

    let diagnostics = null;
    if (input.base && sameShape(shape, input.shape) && input.base.length === out.length) {
      const gram = await kernels.gram(data, input.base);
      const merged = await kernels.gram([out], input.base);
      const N = numel(shape);
      diagnostics = buildDiagnostics({
        tensor,
        refs: input.models.map((m) => m.ref),
        numel: N,
        gram,
        kept: input.models.map(() => N),
        rescale: input.models.map(() => 1),
        signConflicts: 0,
        mergedDeltaL2sq: merged.l2sq[0],
      });
    }
    return { data: out, shape, diagnostics, warnings };
  },
});
