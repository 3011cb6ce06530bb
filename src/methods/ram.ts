/**
 * RAM, Reinforced Agent Merging (mergekit `ram_merge`, `ramplus_tl_merge`). An element counts as
 * changed by model i when |X_i - B| > epsilon. Where exactly one model changes it, its delta is
 * added whole; where several do, their changed deltas are averaged; elsewhere the base stays.
 * ramplus_tl scales each model's unique deltas by lambda_i = 1 + r clamp(rho_i, 0, alpha), with
 * rho_i = shared_i / max(unique_i, epsilon) counted in this tensor ("tensor-local").
 */
import { z } from 'zod';
import type { Kernels, RamStats } from '../kernels/types.js';
import { diagnoseAgainstBase } from './against-base.js';
import { againstBase } from './common.js';
import { defineMethod } from './define.js';
import type { TensorMergeOutput } from './types.js';

const epsilon = z.number().default(1e-5);

/** ramplus_tl's per-model factor on unique deltas; torch.clamp applies max last, so alpha < 0 gives alpha. */
export function ramPlusLambdas(stats: RamStats, r: number, alpha: number, eps: number): number[] {
  return stats.shared.map((shared, i) => {
    const rho = shared / Math.max(stats.unique[i], eps);
    return 1 + r * Math.min(Math.max(rho, 0), alpha);
  });
}

interface RamTensor {
  tensor: string;
  shape: number[];
  base: Float32Array;
  models: Array<{ ref: string; data: Float32Array; shape: number[] }>;
  kernels: Kernels;
  isEmbedding: boolean;
}

/** Both methods: count the changed elements, then merge with `uniqueScale` from the counts. */
async function mergeRam(input: RamTensor, eps: number, uniqueScale: (s: RamStats) => number[]): Promise<TensorMergeOutput> {
  const { tensor, kernels, base } = input;
  const { models, warnings, unchanged } = againstBase(input);
  if (unchanged) return unchanged;
  const data = models.map((m) => m.data);
  const stats = await kernels.ramStats(data, base, eps);
  const scale = uniqueScale(stats);
  const out = await kernels.ramCombine(data, base, eps, scale);
  const diagnostics = await diagnoseAgainstBase({ tensor, kernels, base, refs: models.map((m) => m.ref), models: data, out, kept: stats.active, rescale: scale });
  return { data: out, shape: [...input.shape], diagnostics, warnings };
}

export const ram = defineMethod({
  name: 'ram',
  random: false,
  needsBase: true,
  models: { min: 1 },
  globalParams: z.object({ epsilon }),
  modelParams: z.object({}),
  merge: (input) => mergeRam(input, input.global.epsilon, (s) => s.active.map(() => 1)),
});

export const ramPlusTl = defineMethod({
  name: 'ramplus_tl',
  random: false,
  needsBase: true,
  models: { min: 1 },
  globalParams: z.object({ r: z.number().default(0.1), alpha: z.number().default(0.2), epsilon }),
  modelParams: z.object({}),
  merge: (input) => {
    const { r, alpha, epsilon: eps } = input.global;
    return mergeRam(input, eps, (s) => ramPlusLambdas(s, r, alpha, eps));
  },
});
