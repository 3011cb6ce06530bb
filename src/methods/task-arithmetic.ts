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
import { countNonZero } from '../kernels/loops.js';
import type { Mask, RngKey } from '../kernels/types.js';
import { UserError } from '../util/errors.js';
import { alignToBase, buildDiagnostics, numel, requiredNumber, toRescaleRule } from './common.js';
import { defineMethod } from './define.js';
import type { MergeInput, MergeMethod, TensorMergeOutput } from './types.js';

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
  .default(1)
  .describe('the fraction of the task vector kept');

const weight = z.number({ error: requiredNumber('weight') });
/** `gamma` only for the breadcrumbs pair, `epsilon` only for the della pair. */
const MODEL_SCHEMAS = {
  plain: z.object({ weight, density }),
  outliers: z.object({ weight, density, gamma: z.number().gte(0).lte(1).default(0.01) }),
  della: z.object({ weight, density, epsilon: z.number().gte(0).default(0.15) }),
};

function modelSchema(c: TaskArithmeticConfig) {
  if (c.sparsifier === 'magnitude_outliers') return MODEL_SCHEMAS.outliers;
  if (c.sparsifier === 'della_magprune') return MODEL_SCHEMAS.della;
  return MODEL_SCHEMAS.plain;
}

interface ModelParams {
  weight: number;
  density: number;
  gamma?: number;
  epsilon?: number;
}

interface GlobalParams {
  normalize: boolean;
  rescale: 'l1' | 'inverse_density' | 'none';
  lambda: number;
}

/** della's band: the keep probabilities density +- epsilon must stay inside (0, 1). */
function dellaBandProblem(p: ModelParams, method: string): string | null {
  const eps = p.epsilon ?? 0.15;
  if (p.density >= 1 || (p.density - eps > 0 && p.density + eps < 1)) return null;
  return `${method} needs 0 < density - epsilon and density + epsilon < 1, got density ${p.density} and epsilon ${eps}`;
}

export function makeTaskArithmeticMethod(c: TaskArithmeticConfig): MergeMethod {
  const random = c.sparsifier === 'random' || c.sparsifier === 'della_magprune';
  const common = {
    name: c.name,
    needsBase: true,
    models: { min: 1 },
    globalParams: globalSchema(c),
    modelParams: modelSchema(c),
    rescaleRule: (g: GlobalParams) => g.rescale,
    check: ({ model }: { model: ModelParams }) => (c.sparsifier === 'della_magprune' ? dellaBandProblem(model, c.name) : null),
  } as const;
  // Only the random sparsifiers are handed a random stream; the others are seed-independent by construction.
  return random
    ? defineMethod({ ...common, random: true, merge: (input) => mergeTaskArithmetic(c, input, input.rngKey) })
    : defineMethod({ ...common, random: false, merge: (input) => mergeTaskArithmetic(c, input, null) });
}

async function mergeTaskArithmetic(
  c: TaskArithmeticConfig,
  input: MergeInput<GlobalParams, ModelParams, true, false>,
  rngKey: ((ref: string) => RngKey) | null,
): Promise<TensorMergeOutput> {
  const { tensor, kernels, base } = input;
  const shape = input.shape;
  const N = numel(shape);
  if (base.length !== N) throw new Error(`tensor ${tensor}: base has ${base.length} values for shape [${shape}]`);
  const g = input.global;
  const rule = g.rescale;
  const warnings: string[] = [];
  const models = alignToBase(tensor, shape, input.models, input.isEmbedding, warnings);
  if (models.length === 0) {
    if (input.models.length > 0) warnings.push(`${tensor}: no task vector left, output is the base tensor`);
    return { data: base.slice(), shape: [...shape], diagnostics: null, warnings };
  }
  const params = models.map((m) => m.params);
  const streamOf = (ref: string) => {
    if (!rngKey) throw new Error(`internal: ${c.name} draws a mask but was not declared random`);
    return rngKey(ref);
  };

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
        mask = await kernels.bernoulliMask(streamOf(models[i].ref), rho, N);
      } else {
        // `check` has refused an epsilon outside the band before any tensor was read.
        const eps = p.epsilon ?? 0.15;
        const rowLen = shape.length >= 1 ? shape[shape.length - 1] : 1;
        const r = await kernels.dellaMask(
          data, base, rowLen, rho, eps,
          streamOf(models[i].ref),
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
