/**
 * model_stock: t = N cos / (1 + (N-1) cos) from the mean pairwise cosine of the task vectors,
 * R = t mean(X_i) + (1 - t) B. Cosines use mergekit's guards: the norm product is clamped to at
 * least 1e-6 and the cosine to [-1, 1].
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { againstBase, buildDiagnostics, numel } from './common.js';
import { defineMethod } from './define.js';

export function modelStockT(l2sq: number[], dot: number[]): { t: number; cos: number } {
  const n = l2sq.length;
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const den = Math.max(Math.sqrt(l2sq[i]) * Math.sqrt(l2sq[j]), 1e-6);
      sum += Math.min(1, Math.max(-1, dot[i * n + j] / den));
      pairs++;
    }
  }
  const cos = sum / pairs;
  return { t: (n * cos) / (1 + (n - 1) * cos), cos };
}

export const modelStock = defineMethod({
  name: 'model_stock',
  random: false,
  needsBase: true,
  models: { min: 2 },
  globalParams: z.object({
    filter_wise: z.literal(false, { error: 'model_stock: only filter_wise: false is supported' }).default(false),
  }),
  modelParams: z.object({}),
  async merge(input) {
    const { tensor, kernels, base } = input;
    const { models, warnings, unchanged } = againstBase(input);
    if (unchanged) return unchanged;
    if (models.length < 2) {
      throw new UserError(`model_stock needs the base plus at least two models for tensor ${tensor}; got ${models.length} besides the base`);
    }
    const n = models.length;
    const gram = await kernels.gram(models.map((m) => m.data), base);
    const { t } = modelStockT(gram.l2sq, gram.dot);
    const out = await kernels.weightedSum([...models.map((m) => m.data), base], [...models.map(() => t / n), 1 - t]);
    // R - B = (t/n) sum_i d_i, so its norm follows from the Gram without another pass.
    let s = 0;
    for (const v of gram.dot) s += v;
    const N = numel(input.shape);
    const diagnostics = buildDiagnostics({
      tensor,
      refs: models.map((m) => m.ref),
      numel: N,
      gram,
      kept: models.map(() => N),
      rescale: models.map(() => 1),
      signConflicts: 0,
      mergedDeltaL2sq: Math.max(0, (t / n) * (t / n) * s),
    });
    return { data: out, shape: [...input.shape], diagnostics, warnings };
  },
});
