/** passthrough: one input per tensor, multiplied by its optional per-model `scale`. */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { parseParams } from './parse.js';
import type { MergeMethod, TensorMergeInput, TensorMergeOutput } from './types.js';

const globalParams = z.object({});
const modelParams = z.object({ scale: z.number().default(1) });

export const passthrough: MergeMethod = {
  name: 'passthrough',
  needsBase: false,
  globalParams: globalParams as unknown as MergeMethod['globalParams'],
  modelParams: modelParams as unknown as MergeMethod['modelParams'],
  minModels: 1,
  maxModels: 1,
  rescaleRule: () => 'none',
  async mergeTensor(input: TensorMergeInput): Promise<TensorMergeOutput> {
    if (input.models.length !== 1) {
      throw new UserError(`passthrough takes exactly one model per tensor; tensor ${input.tensor} got ${input.models.length}`);
    }
    const m = input.models[0];
    const { scale } = parseParams(modelParams, m.params, `stage ${input.stage}: model ${JSON.stringify(m.ref)} parameters for tensor ${input.tensor}`);
    const data = scale === 1 ? m.data.slice() : await input.kernels.weightedSum([m.data], [scale]);
    return { data, shape: [...m.shape], diagnostics: null, warnings: [] };
  },
};
