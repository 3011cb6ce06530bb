/**
 * nearswap (mergekit `nearswap_merge`): per element, w = clamp(t / |base - x|, 0, 1) with |base - x|
 * floored at 1e-6, result w x + (1 - w) base. Elements where the two models already agree (within
 * t) take the other model's value; elsewhere the base dominates. Base plus exactly one other model.
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { diagnoseAgainstBase } from './against-base.js';
import { alignToBase, requireBase, requiredNumber } from './common.js';
import { parseParams } from './parse.js';
import type { MergeMethod, TensorMergeInput, TensorMergeOutput } from './types.js';

const globalParams = z.object({ t: z.number({ error: requiredNumber('t') }) });
const modelParams = z.object({});

export const nearswap: MergeMethod = {
  name: 'nearswap',
  needsBase: true,
  globalParams: globalParams as unknown as MergeMethod['globalParams'],
  modelParams: modelParams as unknown as MergeMethod['modelParams'],
  minModels: 1,
  maxModels: 1,
  rescaleRule: () => 'none',
  async mergeTensor(input: TensorMergeInput): Promise<TensorMergeOutput> {
    const { tensor, kernels } = input;
    const base = requireBase('nearswap', tensor, input.base);
    const { t } = parseParams(globalParams, input.global, `merge_method nearswap parameters (tensor ${tensor})`);
    const warnings: string[] = [];
    const models = alignToBase(tensor, input.shape, input.models, input.isEmbedding, warnings);
    if (models.length === 0) return { data: base.slice(), shape: [...input.shape], diagnostics: null, warnings };
    if (models.length !== 1) {
      throw new UserError(`nearswap merges the base with exactly one other model; tensor ${tensor} got ${models.length} besides the base`);
    }
    const out = await kernels.nearswap(base, models[0].data, t);
    const diagnostics = await diagnoseAgainstBase({ tensor, kernels, base, refs: [models[0].ref], models: [models[0].data], out });
    return { data: out, shape: [...input.shape], diagnostics, warnings };
  },
};
