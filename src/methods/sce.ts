/**
 * sce (mergekit `sce_merge`, FuseChat's Select-Calculate-Erase). Per tensor, with d_i = X_i - B:
 *   select: with select_topk < 1, keep the floor(nonzero * select_topk) positions whose variance of
 *           d_i across the models is largest (`sce_mask`), zeroing the others in every d_i;
 *   calculate: w_i = mean(d_i^2) / sum_j mean(d_j^2), or 1/n when that sum is below 1e-6 (`sce_weight`);
 *   erase: TIES sign election on sum_i d_i (unweighted, 0 counts as +), then
 *   R = B + sum_i [agrees_i] w_i d_i / max(sum_i [agrees_i] w_i, 1e-6).
 * The 1e-6 guard compares a sum of mean squares, so task vectors with entries below ~1e-3 (typical of
 * full fine-tunes) get equal weights; mergekit behaves so and we keep it.
 */
import { z } from 'zod';
import { countNonZero } from '../kernels/loops.js';
import { rankBandMask } from '../kernels/select.js';
import { diagnoseAgainstBase } from './against-base.js';
import { againstBase, numel } from './common.js';
import { defineMethod } from './define.js';

const fround = Math.fround;

/** How many positions sce's selection keeps: int(nonzero * density) computed in float32, as torch does. */
export function sceKeepCount(nonzero: number, density: number): number {
  return Math.trunc(fround(fround(nonzero) * fround(density)));
}

/** mergekit `sce_weight` from the per-model sums of squares over `N` elements. */
export function sceWeights(sumSq: number[], N: number): number[] {
  const means = sumSq.map((s) => s / N);
  const total = means.reduce((a, b) => a + b, 0);
  if (Math.abs(total) < 1e-6) return means.map(() => 1 / means.length);
  return means.map((m) => m / total);
}

export const sce = defineMethod({
  name: 'sce',
  random: false,
  needsBase: true,
  models: { min: 1 },
  globalParams: z.object({
    select_topk: z.number().default(1),
    // Accepted and ignored: in mergekit it only changes the mask's dtype.
    int8_mask: z.boolean().default(false),
  }),
  modelParams: z.object({}),
  async merge(input) {
    const { tensor, kernels, base } = input;
    const density = input.global.select_topk;
    const { models, warnings, unchanged } = againstBase(input);
    if (unchanged) return unchanged;
    const N = numel(input.shape);
    const data = models.map((m) => m.data);
    let mask: Uint8Array | null = null;
    let kept = N;
    if (density < 1) {
      let k = 0;
      if (density > 0) {
        const variance = await kernels.deltaVariance(data, base);
        k = sceKeepCount(countNonZero(variance), density);
        if (k > 0) mask = rankBandMask(variance, N - k, N);
      }
      // Nothing selected: every task vector is erased and the result is the base.
      if (k === 0) mask = new Uint8Array(N);
      kept = k;
    }
    const weights = sceWeights(await kernels.maskedSumSq(data, base, mask), N);
    const out = await kernels.consensusMean({ base, models: data, mask, coeffs: weights, minDivisor: 1e-6 });
    const diagnostics = await diagnoseAgainstBase({ tensor, kernels, base, refs: models.map((m) => m.ref), models: data, out, kept: models.map(() => kept) });
    return { data: out, shape: [...input.shape], diagnostics, warnings };
  },
});
