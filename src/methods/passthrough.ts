/** passthrough: one input per tensor, multiplied by its optional per-model `scale`. */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { defineMethod } from './define.js';

export const passthrough = defineMethod({
  name: 'passthrough',
  random: false,
  needsBase: false,
  models: { min: 1, max: 1 },
  globalParams: z.object({}),
  modelParams: z.object({ scale: z.number().default(1) }),
  async merge(input) {
    if (input.models.length !== 1) {
      throw new UserError(`passthrough takes exactly one model per tensor; tensor ${input.tensor} got ${input.models.length}`);
    }
    const m = input.models[0];
    const { scale } = m.params;
    const data = scale === 1 ? m.data.slice() : await input.kernels.weightedSum([m.data], [scale]);
    return { data, shape: [...m.shape], diagnostics: null, warnings: [] };
  },
});
