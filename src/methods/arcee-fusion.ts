/**
 * arcee_fusion (mergekit `ArceeFusionMergeTask`): importance = |x - base| times the KL divergence of
 * the row's softmaxes (rows along the last dimension; `_compute_importance`); the threshold is
 * median + 1.5 IQR of all importances (`DynamicThresholdFusion`), and elements at or above it take
 * the other model's value, the rest keep the base's. Base plus exactly one other model, no parameters.
 *
 * Quantiles are mergekit's: the sorted value at index trunc(q (n - 1)), computed in float32. mergekit
 * takes them from a random sample of 1e6 elements when a tensor has more; we take them exactly over
 * every element (no random draw, so nothing to seed, and the threshold is the one the sample estimates).
 */
import { z } from 'zod';
import { kthLargestAbs } from '../kernels/select.js';
import { UserError } from '../util/errors.js';
import { diagnoseAgainstBase } from './against-base.js';
import { alignToBase, numel, requireBase } from './common.js';
import { parseParams } from './parse.js';
import type { MergeMethod, TensorMergeInput, TensorMergeOutput } from './types.js';

const globalParams = z.object({});
const modelParams = z.object({});

const fround = Math.fround;

/** The q-quantile of non-negative `scores` as mergekit's `approximate_quantiles` indexes it. */
export function fusionQuantile(scores: Float32Array, q: number): number {
  const n = scores.length;
  const idx = Math.trunc(fround(fround(q) * fround(n - 1)));
  // Ascending position idx is the (n - idx)-th largest.
  return kthLargestAbs(scores, n - idx);
}

/** median + 1.5 (q3 - q1), each step rounded to float32 as torch computes it. */
export function fusionThreshold(scores: Float32Array): number {
  const median = fusionQuantile(scores, 0.5);
  const iqr = fround(fusionQuantile(scores, 0.75) - fusionQuantile(scores, 0.25));
  return fround(median + fround(1.5 * iqr));
}

export const arceeFusion: MergeMethod = {
  name: 'arcee_fusion',
  needsBase: true,
  globalParams: globalParams as unknown as MergeMethod['globalParams'],
  modelParams: modelParams as unknown as MergeMethod['modelParams'],
  minModels: 1,
  maxModels: 1,
  rescaleRule: () => 'none',
  async mergeTensor(input: TensorMergeInput): Promise<TensorMergeOutput> {
    const { tensor, kernels } = input;
    const base = requireBase('arcee_fusion', tensor, input.base);
    parseParams(globalParams, input.global, `merge_method arcee_fusion parameters (tensor ${tensor})`);
    const warnings: string[] = [];
    const models = alignToBase(tensor, input.shape, input.models, input.isEmbedding, warnings);
    if (models.length === 0) return { data: base.slice(), shape: [...input.shape], diagnostics: null, warnings };
    if (models.length !== 1) {
      throw new UserError(`arcee_fusion merges the base with exactly one other model; tensor ${tensor} got ${models.length} besides the base`);
    }
    const x = models[0].data;
    const rowLen = input.shape.length > 0 ? input.shape[input.shape.length - 1] : 1;
    const scores = await kernels.fusionImportance(x, base, rowLen || 1);
    const { out, kept } = await kernels.thresholdMerge(x, base, scores, numel(input.shape) > 0 ? fusionThreshold(scores) : 0);
    const diagnostics = await diagnoseAgainstBase({ tensor, kernels, base, refs: [models[0].ref], models: [x], out, kept: [kept] });
    return { data: out, shape: [...input.shape], diagnostics, warnings };
  },
};
