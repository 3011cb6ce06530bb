/**
 * The task-arithmetic family: one algorithm, eight names (spec §1). Each name is a config of
 * sparsifier, sign consensus and defaults. Per tensor:
 *   d_i = X_i - B; sparsify d_i with rho_i (and rescale); e_i = w_i d'_i;
 *   consensus or plain sum; normalize by the divisor; times lambda; B + mixed.
 * Everything is computed in float32 inputs with float64 accumulation and rounded once at the end
 * (mergekit rounds at every step in the checkpoint dtype; results differ by at most that rounding).
 * `int8_mask` is accepted and ignored: in mergekit it only shrinks an intermediate.
 */
import { z } from 'zod';
import { maskKey } from '../kernels/rng.js';
import { countNonZero } from '../kernels/loops.js';
import type { Mask } from '../kernels/types.js';
import { UserError } from '../util/errors.js';
import { alignToBase, buildDiagnostics, numel, requireBase, requiredNumber, toRescaleRule } from './common.js';
import { parseParams } from './parse.js';
import type { MergeMethod, RescaleRule, TensorMergeInput, TensorMergeOutput } from './types.js';

export type Sparsifier = 'none' | 'magnitude' | 'random' | 'magnitude_outliers' | 'della_magprune';

export interface TaskArithmeticConfig {
  name: string;
  sparsifier: Sparsifier;
  consensus: boolean;
  normalizeDefault: boolean;
  rescaleDefault: boolean;
}

export const TASK_ARITHMETIC_FAMILY: TaskArithmeticConfig[] = [
  { name: 'task_arithmetic', sparsifier: 'none', consensus: false, normalizeDefault: false, rescaleDefault: false },
  { name: 'ties', sparsifier: 'magnitude', consensus: true, normalizeDefault: true, rescaleDefault: false },
  { name: 'dare_ties', sparsifier: 'random', consensus: true, normalizeDefault: false, rescaleDefault: true },
  { name: 'dare_linear', sparsifier: 'random', consensus: false, normalizeDefault: false, rescaleDefault: true },
  { name: 'breadcrumbs', sparsifier: 'magnitude_outliers', consensus: false, normalizeDefault: false, rescaleDefault: false },
  { name: 'breadcrumbs_ties', sparsifier: 'magnitude_outliers', consensus: true, normalizeDefault: false, rescaleDefault: false },
  { name: 'della', sparsifier: 'della_magprune', consensus: true, normalizeDefault: true, rescaleDefault: true },
  { name: 'della_linear', sparsifier: 'della_magprune', consensus: false, normalizeDefault: false, rescaleDefault: true },
];

/** `rescale: true | 'l1'` = current mergekit L1 matching; `'inverse_density'` = the DARE paper's 1/rho; `false | 'none'`. */
export const rescaleParam = z.union([z.boolean(), z.enum(['l1', 'inverse_density', 'none'])]);

function globalSchema(c: TaskArithmeticConfig) {
  return z.object({
    normalize: z.boolean().default(c.normalizeDefault),
    rescale: rescaleParam.default(c.rescaleDefault).transform(toRescaleRule),
    lambda: z.number().default(1),
    int8_mask: z.boolean().default(false),
  });
}

const density = z
  .number({ error: requiredNumber('density') })
  .gt(0, { error: 'density must be in (0, 1]' })
  .lte(1, { error: 'density must be in (0, 1]' })
  .default(1);

function modelSchema(c: TaskArithmeticConfig) {
  const base = { weight: z.number({ error: requiredNumber('weight') }), density };
  if (c.sparsifier === 'magnitude_outliers') return z.object({ ...base, gamma: z.number().gte(0).lte(1).default(0.01) });
  if (c.sparsifier === 'della_magprune') return z.object({ ...base, epsilon: z.number().gte(0).default(0.15) });
  return z.object(base);
}

interface ModelParams {
  weight: number;
  density: number;
  gamma?: number;
  epsilon?: number;
}

export function makeTaskArithmeticMethod(c: TaskArithmeticConfig): MergeMethod {
  const globalParams = globalSchema(c);
  const modelParams = modelSchema(c);
  return {
    name: c.name,
    needsBase: true,
    globalParams: globalParams as unknown as MergeMethod['globalParams'],
    modelParams: modelParams as unknown as MergeMethod['modelParams'],
    minModels: 1,
    rescaleRule: (g) => parseParams(globalParams, g, `merge_method ${c.name} parameters`).rescale,
    mergeTensor: (input) => mergeTaskArithmetic(c, globalParams, modelParams, input),
  };
}

async function mergeTaskArithmetic(
  c: TaskArithmeticConfig,
  globalParams: ReturnType<typeof globalSchema>,
  modelParams: ReturnType<typeof modelSchema>,
  input: TensorMergeInput,
): Promise<TensorMergeOutput> {
  const { tensor, kernels } = input;
  const base = requireBase(c.name, tensor, input.base);
  const shape = input.shape;
  const N = numel(shape);
  if (base.length !== N) throw new Error(`tensor ${tensor}: base has ${base.length} values for shape [${shape}]`);
  const g = parseParams(globalParams, input.global, `merge_method ${c.name} parameters (tensor ${tensor})`);
  const rule: RescaleRule = g.rescale;
  const warnings: string[] = [];
  const models = alignToBase(tensor, shape, input.models, input.isEmbedding, warnings);
  if (models.length === 0) {
    if (input.models.length > 0) warnings.push(`${tensor}: no task vector left, output is the base tensor`);
    return { data: base.slice(), shape: [...shape], diagnostics: null, warnings };
  }
  const params = models.map(
    (m) => parseParams(modelParams, m.params, `stage ${input.stage}: model ${JSON.stringify(m.ref)} parameters for tensor ${tensor}`) as ModelParams,
  );

  const masks: Mask[] = [];
  const coeffs: number[] = [];
  const kept: number[] = [];
  const rescale: number[] = [];
  for (let i = 0; i < models.length; i++) {
    const { data } = models[i];
    const p = params[i];
    const rho = p.density;
    let mask: Mask = null;
    let factor = 1;
    let keptCount = N;
    if (c.sparsifier !== 'none' && rho < 1) {
      let perElementScale = false;
      let meanInvP = 1;
      if (c.sparsifier === 'magnitude') {
        const k = Math.floor(rho * N);
        if (k <= 0) {
          throw new UserError(
            `stage ${input.stage}: ${c.name}: density ${rho} of model ${m(models[i].ref)} keeps floor(${rho} * ${N}) = 0 elements of tensor ${tensor}; raise density`,
            { field: 'density' },
          );
        }
        mask = await kernels.rankBandMask(data, base, N - k, N);
        keptCount = k;
      } else if (c.sparsifier === 'magnitude_outliers') {
        let nTop = Math.floor((p.gamma ?? 0.01) * N);
        let nBot = N - Math.floor(rho * N) - nTop;
        if (nBot < 0) {
          nTop += nBot;
          nBot = 0;
        }
        // mergekit slices [n_bot:-n_top], which is empty when n_top = 0; we keep [n_bot, N).
        mask = await kernels.rankBandMask(data, base, nBot, N - nTop);
        keptCount = N - nTop - nBot;
      } else if (c.sparsifier === 'random') {
        mask = await kernels.bernoulliMask(maskKey(input.seed, input.stage, models[i].ref, tensor), rho, N);
      } else {
        const eps = p.epsilon ?? 0.15;
        if (!(rho - eps > 0 && rho + eps < 1)) {
          throw new UserError(
            `stage ${input.stage}: ${c.name}: model ${m(models[i].ref)} has density ${rho} and epsilon ${eps}; need 0 < density - epsilon and density + epsilon < 1`,
            { field: 'epsilon' },
          );
        }
        const rowLen = shape.length >= 1 ? shape[shape.length - 1] : 1;
        const r = await kernels.dellaMask(
          data, base, rowLen, rho, eps,
          maskKey(input.seed, input.stage, models[i].ref, tensor),
          rule === 'inverse_density',
        );
        mask = r.mask;
        keptCount = r.kept;
        perElementScale = rule === 'inverse_density';
        meanInvP = r.meanInvP;
      }
      if (rule === 'l1') {
        const s = await kernels.maskedL1(data, base, mask);
        keptCount = s.count;
        if (s.full >= 1e-7 && s.kept >= 1e-7) factor = s.full / s.kept;
      } else {
        // Selection and della already know how many they kept; only a random mask is counted.
        if (c.sparsifier === 'random') keptCount = countNonZero(mask!);
        if (rule === 'inverse_density') factor = perElementScale ? 1 : 1 / rho;
      }
      if (perElementScale) rescale.push(meanInvP);
      else rescale.push(factor);
    } else {
      rescale.push(1);
    }
    masks.push(mask);
    coeffs.push(p.weight * factor);
    kept.push(keptCount);
  }

  const weights = params.map((p) => p.weight);
  const r = await kernels.combine({
    base,
    models: models.map((x) => x.data),
    masks,
    coeffs,
    weights,
    consensus: c.consensus,
    normalize: g.normalize,
    lambda: g.lambda,
    gram: true,
  });
  const diagnostics = buildDiagnostics({
    tensor,
    refs: models.map((x) => x.ref),
    numel: N,
    gram: r.gram!,
    kept,
    rescale,
    signConflicts: r.signConflicts,
    mergedDeltaL2sq: r.mergedDeltaL2sq,
  });
  return { data: r.out, shape: [...shape], diagnostics, warnings };
}

function m(ref: string): string {
  return JSON.stringify(ref);
}
