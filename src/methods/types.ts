import type { z } from 'zod';
import type { Kernels, RngKey } from '../kernels/types.js';
import type { TensorDiagnostics } from './diagnostics.js';

/** Which DARE/della rescale rule ran; recorded in StageDiagnostics.rescaleRule. */
export type RescaleRule = 'l1' | 'inverse_density' | 'none';

/** A parameter schema: one zod field per parameter, defaults filled when parsed. */
export type ParamSchema = z.ZodObject<z.ZodRawShape>;

export interface TensorMergeOutput {
  data: Float32Array;
  shape: number[];
  /** Filled by the task-arithmetic family, linear/slerp/model_stock when a base exists; null otherwise. */
  diagnostics: TensorDiagnostics | null;
  /** Per-tensor warnings (skipped mismatched model, ...), each naming the tensor. */
  warnings: string[];
}

/** One contributing model's tensor with its parameters, parsed for this tensor. */
export interface MethodTensor<M> {
  /** The model reference as written in the recipe (path, hub id or earlier stage name). */
  ref: string;
  data: Float32Array;
  shape: number[];
  params: M;
}

type BaseOf<B extends boolean> = B extends true
  ? { base: Float32Array; baseRef: string }
  : { base: Float32Array | null; baseRef: string | null };

type RandomOf<R extends boolean> = R extends true
  ? {
      /** The counter-based stream of a model's draws for this tensor, keyed by (seed, stage, model, tensor). */
      rngKey(ref: string): RngKey;
    }
  : Record<never, never>;

/**
 * What a method's `merge` receives for one tensor. The base is typed present for methods that
 * need one, and only methods declared `random` can reach a random stream: a method that draws
 * without saying so would lose its seed from cache keys and from a sweep's seed axis.
 */
export type MergeInput<G, M, B extends boolean, R extends boolean> = {
  tensor: string;
  /** Output shape: the base's shape when there is a base, else the first model's. */
  shape: number[];
  /**
   * For `needsBase` methods: the contributing models other than the base (the base is never listed here).
   * For the others (linear, passthrough): every model listed in the recipe, the base included if listed.
   * Methods never write into these arrays.
   */
  models: Array<MethodTensor<M>>;
  /** Global parameters, parsed for this tensor (gradients such as slerp's `t` already resolved). */
  global: G;
  kernels: Kernels;
  /** Stage name (or index as a string), for messages. */
  stage: string;
  /** Token embeddings and output heads: mismatched shapes are cropped instead of skipped. */
  isEmbedding: boolean;
} & BaseOf<B> &
  RandomOf<R>;

/** One model's parsed parameters with the global ones, for a method's `check`. */
export interface CheckInput<G, M> {
  global: G;
  model: M;
  ref: string;
}

/** Everything a method declares about itself; `defineMethod` turns it into a registered MergeMethod. */
export interface MethodDefinition<G extends ParamSchema, M extends ParamSchema, B extends boolean, R extends boolean> {
  /** The `merge_method` name a recipe uses. */
  name: string;
  /** Draws random numbers: the seed then keys its output, its cache entries and a sweep's seed axis. */
  random: R;
  /** The recipe must give `base_model`. */
  needsBase: B;
  /** Bounds on the number of models as in `MergeInput.models` (non-base models for needsBase methods). */
  models: { min: number; max?: number };
  /** Top-level parameters (read only from the recipe's top-level `parameters`). */
  globalParams: G;
  /** Per-model parameters (model, slice or top level, most specific wins); required fields have no default. */
  modelParams: M;
  /**
   * A rule across one model's parameters that single fields cannot state (della's epsilon band),
   * run on parsed parameters before any tensor is read: the problem in words, or null.
   */
  check?(p: CheckInput<z.output<G>, z.output<M>>): string | null;
  /** The rescale rule parsed global parameters select; 'none' when absent. */
  rescaleRule?(global: z.output<G>): RescaleRule;
  merge(input: MergeInput<z.output<G>, z.output<M>, B, R>): Promise<TensorMergeOutput>;
}

/** A problem with the parameters of one tensor, as data: the planner says where it is in the recipe. */
export type ParamIssue =
  | { kind: 'missing'; key: string; model: number | null }
  | { kind: 'range'; key: string; model: number | null; value: number; interval: string; about: string | null }
  | { kind: 'invalid'; key: string; model: number | null; message: string }
  | { kind: 'rule'; model: number | null; message: string };

declare const parsedBrand: unique symbol;
/** Parameters a method's `prepare` accepted; only that method's `merge` takes them. */
export interface ParsedParams {
  readonly [parsedBrand]: true;
  /** The method that parsed them. */
  readonly method: string;
}

export type Prepared = { ok: true; params: ParsedParams } | { ok: false; issues: ParamIssue[] };

export interface PreparedMergeInput {
  tensor: string;
  shape: number[];
  base: Float32Array | null;
  baseRef: string | null;
  /** In the order of the raw models `prepare` was given. */
  models: Array<{ ref: string; data: Float32Array; shape: number[] }>;
  params: ParsedParams;
  kernels: Kernels;
  /** Merge seed; random methods key their streams by (seed, stage, model ref, tensor). */
  seed: number;
  stage: string;
  isEmbedding: boolean;
}

/** One contributing model's tensor with raw per-model numbers, for callers outside the planner. */
export interface ModelTensor {
  ref: string;
  data: Float32Array;
  shape: number[];
  params: Record<string, number>;
}

/** A tensor with raw parameters (as resolved from a recipe, unparsed): what `mergeTensor` takes. */
export interface TensorMergeInput extends Omit<PreparedMergeInput, 'models' | 'params'> {
  models: ModelTensor[];
  global: Record<string, unknown>;
}

/** A registered method, its parameter types erased: what the planner, the engine and the sweep see. */
export interface MergeMethod {
  readonly name: string;
  readonly random: boolean;
  readonly needsBase: boolean;
  readonly models: { readonly min: number; readonly max: number };
  readonly globalParams: ParamSchema;
  readonly modelParams: ParamSchema;
  /** Digest of the module that defined it when it came from outside src/methods (a plugin), else null. */
  readonly source: string | null;
  /** Parse one tensor's raw parameters and run `check`; never throws for a user's mistake. */
  prepare(raw: { global: Record<string, unknown>; models: Array<{ ref: string; params: Record<string, unknown> }> }): Prepared;
  /** The rescale rule raw global parameters select ('none' when they do not parse). */
  rescaleRule(global: Record<string, unknown>): RescaleRule;
  /** Merge one tensor whose parameters this method's `prepare` accepted. */
  merge(input: PreparedMergeInput): Promise<TensorMergeOutput>;
  /** `prepare` then `merge`, a problem thrown as a UserError naming the stage, model and tensor. */
  mergeTensor(input: TensorMergeInput): Promise<TensorMergeOutput>;
}
