/**
 * RAM, Reinforced Agent Merging (mergekit `ram_merge`, `ramplus_tl_merge`). An element counts as
 * changed by model i when |X_i - B| > epsilon. Where exactly one model changes it, its delta is
 * added whole; where several do, their changed deltas are averaged; elsewhere the base stays.
 * ramplus_tl scales each model's unique deltas by lambda_i = 1 + r clamp(rho_i, 0, alpha), with
 * rho_i = shared_i / max(unique_i, epsilon) counted in this tensor ("tensor-local").
 */
import { z } from 'zod';
import type { RamStats } from '../kernels/types.js';
import { diagnoseAgainstBase } from './against-base.js';
import { alignToBase, requireBase } from './common.js';
import { parseParams } from './parse.js';
import type { MergeMethod, TensorMergeInput, TensorMergeOutput } from './types.js';

const epsilon = z.number().default(1e-5);
const ramGlobal = z.object({ epsilon });
const ramPlusGlobal = z.object({ r: z.number().default(0.1), alpha: z.number().default(0.2), epsilon });
const modelParams = z.object({});

/** ramplus_tl's per-model factor on unique deltas; torch.clamp applies max last, so alpha < 0 gives alpha. */
export function ramPlusLambdas(stats: RamStats, r: number, alpha: number, eps: number): number[] {
  return stats.shared.map((shared, i) => {
    const rho = shared / Math.max(stats.unique[i], eps);
    return 1 + r * Math.min(Math.max(rho, 0), alpha);
  });
}

function makeRam(name: 'ram' | 'ramplus_tl'): MergeMethod {
  const globalParams = name === 'ram' ? ramGlobal : ramPlusGlobal;
  return {
    name,
    needsBase: true,
    globalParams: globalParams as unknown as MergeMethod['globalParams'],
    modelParams: modelParams as unknown as MergeMethod['modelParams'],
    minModels: 1,
    rescaleRule: () => 'none',
    async mergeTensor(input: TensorMergeInput): Promise<TensorMergeOutput> {
      const { tensor, kernels } = input;
      const base = requireBase(name, tensor, input.base);
      const g = parseParams(globalParams, input.global, `merge_method ${name} parameters (tensor ${tensor})`) as { epsilon: number; r?: number; alpha?: number };
      const warnings: string[] = [];
      const models = alignToBase(tensor, input.shape, input.models, input.isEmbedding, warnings);
      if (models.length === 0) return { data: base.slice(), shape: [...input.shape], diagnostics: null, warnings };
      const data = models.map((m) => m.data);
      const stats = await kernels.ramStats(data, base, g.epsilon);
      const scale = name === 'ram' ? data.map(() => 1) : ramPlusLambdas(stats, g.r!, g.alpha!, g.epsilon);
      const out = await kernels.ramCombine(data, base, g.epsilon, scale);
      const diagnostics = await diagnoseAgainstBase({ tensor, kernels, base, refs: models.map((m) => m.ref), models: data, out, kept: stats.active, rescale: scale });
      return { data: out, shape: [...input.shape], diagnostics, warnings };
    },
  };
}

export const ram = makeRam('ram');
export const ramPlusTl = makeRam('ramplus_tl');
