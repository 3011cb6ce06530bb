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
import { againstBase, numel } from './common.js';
import { defineMethod } from './define.js';

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

export const arceeFusion = defineMethod({
  name: 'arcee_fusion',
  random: false,
  needsBase: true,
  models: { min: 1, max: 1 },
  globalParams: z.object({}),
  modelParams: z.object({}),
  async merge(input) {
    const { tensor, kernels, base } = input;
    const { models, warnings, unchanged } = againstBase(input);
    if (unchanged) return unchanged;
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
});
