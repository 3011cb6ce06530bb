/** linear: R = sum_i w_i X_i, divided by sum_i w_i when `normalize` (default true). */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { buildDiagnostics, cropToCommon, numel, requiredNumber, sameShape } from './common.js';
import type { MergeMethod, TensorMergeInput, TensorMergeOutput } from './types.js';
import { parseParams } from './parse.js';

const globalParams = z.object({ normalize: z.boolean().default(true) });
const modelParams = z.object({ weight: z.number({ error: requiredNumber('weight') }) });

export const linear: MergeMethod = {
  name: 'linear',
  needsBase: false,
  globalParams: globalParams as unknown as MergeMethod['globalParams'],
  modelParams: modelParams as unknown as MergeMethod['modelParams'],
  minModels: 1,
  rescaleRule: () => 'none',
  async mergeTensor(input: TensorMergeInput): Promise<TensorMergeOutput> {
    const { tensor, kernels } = input;
    const g = parseParams(globalParams, input.global, `merge_method linear parameters (tensor ${tensor})`);
    const warnings: string[] = [];
    if (input.models.length === 0) throw new UserError(`linear: no model provides tensor ${tensor}`);
    const shapesDiffer = input.models.some((m) => !sameShape(m.shape, input.models[0].shape));
    if (shapesDiffer && !input.isEmbedding) {
      throw new UserError(`linear: tensor ${tensor} has different shapes: ${input.models.map((m) => `${m.ref} [${m.shape}]`).join(', ')}`);
    }
    const { shape, data } = cropToCommon(tensor, input.models, warnings);
    const weights = input.models.map((m) => parseParams(modelParams, m.params, `stage ${input.stage}: model ${JSON.stringify(m.ref)} parameters for tensor ${tensor}`).weight);
    let divisor = 1;
    if (g.normalize) {
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
};
