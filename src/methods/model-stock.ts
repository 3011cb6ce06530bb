/**
 * model_stock: t = N cos / (1 + (N-1) cos) from the mean pairwise cosine of the task vectors,
 * R = t mean(X_i) + (1 - t) B. Cosines use mergekit's guards: the norm product is clamped to at
 * least 1e-6 and the cosine to [-1, 1].
 */
import { z } from 'zod';
import { UserError } from '../util/errors.js';
import { alignToBase, buildDiagnostics, numel, requireBase } from './common.js';
import { parseParams } from './parse.js';
import type { MergeMethod, TensorMergeInput, TensorMergeOutput } from './types.js';

const globalParams = z.object({
  filter_wise: z.literal(false, { error: 'model_stock: only filter_wise: false is supported' }).default(false),
});
const modelParams = z.object({});

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

export const modelStock: MergeMethod = {
  name: 'model_stock',
  needsBase: true,
  globalParams: globalParams as unknown as MergeMethod['globalParams'],
  modelParams: modelParams as unknown as MergeMethod['modelParams'],
  minModels: 2,
  rescaleRule: () => 'none',
  async mergeTensor(input: TensorMergeInput): Promise<TensorMergeOutput> {
    const { tensor, kernels } = input;
    const base = requireBase('model_stock', tensor, input.base);
    parseParams(globalParams, input.global, `merge_method model_stock parameters (tensor ${tensor})`);
    const warnings: string[] = [];
    const models = alignToBase(tensor, input.shape, input.models, input.isEmbedding, warnings);
    if (models.length === 0) return { data: base.slice(), shape: [...input.shape], diagnostics: null, warnings };
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
};
