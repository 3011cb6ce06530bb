/**
 * nearswap (mergekit `nearswap_merge`): per element, w = clamp(t / |base - x|, 0, 1) with |base - x|
 * floored at 1e-6, result w x + (1 - w) base. Elements where the two models already agree (within
 * t) take the other model's value; elsewhere the base dominates. Base plus exactly one other model.
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { diagnoseAgainstBase } from './against-base.js';
import { againstBase, requiredNumber } from './common.js';
import { defineMethod } from './define.js';

export const nearswap = defineMethod({
  name: 'nearswap',
  random: false,
  needsBase: true,
  models: { min: 1, max: 1 },
  globalParams: z.object({ t: z.number({ error: requiredNumber('t') }) }),
  modelParams: z.object({}),
  async merge(input) {
    const { tensor, kernels, base } = input;
    const { t } = input.global;
    const { models, warnings, unchanged } = againstBase(input);
    if (unchanged) return unchanged;
    if (models.length !== 1) {
      throw new UserError(`nearswap merges the base with exactly one other model; tensor ${tensor} got ${models.length} besides the base`);
    }
    const out = await kernels.nearswap(base, models[0].data, t);
    const diagnostics = await diagnoseAgainstBase({ tensor, kernels, base, refs: [models[0].ref], models: [models[0].data], out });
    return { data: out, shape: [...input.shape], diagnostics, warnings };
  },
});
