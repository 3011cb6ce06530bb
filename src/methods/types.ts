import type { z } from 'zod';
import type { Kernels } from '../kernels/types.js';
import type { TensorDiagnostics } from '../merge/diagnostics.js';

/** One contributing model's tensor, with its parameters already resolved to numbers for this tensor. */
export interface ModelTensor {
  /** The model reference as written in the recipe (path, hub id or earlier stage name). */
  ref: string;
  data: Float32Array;
  shape: number[];
  /** Resolved per-model parameters (weight, density, gamma, epsilon, scale, ...); parsed with `modelParams`. */
  params: Record<string, number>;
}

export interface TensorMergeInput {
  tensor: string;
  /** Output shape: the base's shape when there is a base, else the first model's. */
  shape: number[];
  /** The base model's tensor. Present whenever the recipe has `base_model` (required when `needsBase`). */
  base: Float32Array | null;
  baseRef: string | null;
  /**
   * For `needsBase` methods and `optionalBase: 'reference'`: the contributing models other than the base
   * (the base is never listed here). For the others (linear, passthrough, karcher): every model listed in
   * the recipe, the base included if listed.
   * Methods never write into these arrays.
   */
  models: ModelTensor[];
  /** Global parameters for this tensor (gradients such as slerp's `t` already resolved); parsed with `globalParams`. */
  global: Record<string, unknown>;
  kernels: Kernels;
  /** Merge seed; random masks are keyed by (seed, stage, model ref, tensor). */
  seed: number;
  /** Stage name (or index as a string) for the random-stream key. */
  stage: string;
  /** embed_tokens / lm_head and friends: mismatched shapes are cropped instead of skipped (see names.ts). */
  isEmbedding: boolean;
}

export interface TensorMergeOutput {
  data: Float32Array;
  shape: number[];
  /** Filled by the task-arithmetic family, linear/slerp/model_stock when a base exists; null otherwise. */
  diagnostics: TensorDiagnostics | null;
  /** Per-tensor warnings (skipped mismatched model, ...), each naming the tensor. */
  warnings: string[];
}

/** Which DARE/della rescale rule ran; recorded in StageDiagnostics.rescaleRule. */
export type RescaleRule = 'l1' | 'inverse_density' | 'none';

/**
 * How a method that does not need a base treats a `base_model` it is given. 'listed' (the default):
 * the base is merged only where the recipe lists it among the models (linear, passthrough).
 * 'reference': the base is the origin the models are taken against and never one of the merged
 * models, so `models` and the model count leave it out (nuslerp, multislerp).
 */
export type OptionalBaseRole = 'listed' | 'reference';

export interface MergeMethod {
  name: string;
  /** The recipe must give `base_model`. */
  needsBase: boolean;
  /** For methods that do not need a base: how a given base takes part (default 'listed'). */
  optionalBase?: OptionalBaseRole;
  /**
   * Global (top-level only) parameters, with defaults filled when parsed. Unknown keys are stripped
   * (the top level also carries per-model fallbacks such as `density`).
   */
  globalParams: z.ZodObject<z.ZodRawShape>;
  /** Per-model parameters; `weight` is required (no default) where the spec says so. */
  modelParams: z.ZodObject<z.ZodRawShape>;
  /** Bounds on `models.length` as defined in TensorMergeInput (non-base models for needsBase methods). */
  minModels?: number;
  maxModels?: number;
  /** The rescale rule a parsed global-parameter object selects (task-arithmetic family), else 'none'. */
  rescaleRule(global: Record<string, unknown>): RescaleRule;
  mergeTensor(input: TensorMergeInput): Promise<TensorMergeOutput>;
}
