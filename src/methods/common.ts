import { layerIndex } from '../checkpoint/names.js';
import type { Gram } from '../kernels/types.js';
import { UserError } from '../util/errors.js';
import type { TensorDiagnostics } from './diagnostics.js';
import type { RescaleRule, TensorMergeOutput } from './types.js';

/** What shape handling needs of a model's tensor. */
interface Shaped {
  ref: string;
  data: Float32Array;
  shape: number[];
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Top-left block of `data` (row-major, shape `from`) with shape `to`; every dim of `to` must be <= `from`'s. */
export function cropTo(data: Float32Array, from: readonly number[], to: readonly number[]): Float32Array {
  if (from.length !== to.length) throw new Error(`cropTo: rank ${from.length} vs ${to.length}`);
  if (sameShape(from, to)) return data;
  const out = new Float32Array(numel(to));
  const rank = to.length;
  if (rank === 0) return out;
  const inner = to[rank - 1];
  const outerCount = numel(to.slice(0, -1));
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (let o = 0; o < outerCount; o++) {
    let src = 0;
    for (let d = 0; d < rank - 1; d++) src = (src + idx[d]) * from[d + 1];
    out.set(data.subarray(src, src + inner), o * inner);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < to[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Whether `from` can be cropped to `to` (same rank, no dim smaller). */
export function canCrop(from: readonly number[], to: readonly number[]): boolean {
  return from.length === to.length && from.every((d, i) => d >= to[i]);
}

/**
 * Bring each model's tensor to the base's shape: equal shapes pass, embedding-like tensors are cropped
 * to the base's block, anything else is dropped with a warning naming the model and the tensor.
 */
export function alignToBase<T extends Shaped>(tensor: string, baseShape: readonly number[], models: readonly T[], isEmbedding: boolean, warnings: string[]): T[] {
  const out: T[] = [];
  for (const m of models) {
    if (m.data.length !== numel(m.shape)) {
      throw new Error(`tensor ${tensor} of ${m.ref}: ${m.data.length} values for shape [${m.shape}]`);
    }
    if (sameShape(m.shape, baseShape)) {
      out.push(m);
    } else if (isEmbedding && canCrop(m.shape, baseShape)) {
      warnings.push(`${tensor}: using the top-left [${baseShape}] block of ${m.ref}'s [${m.shape}]`);
      out.push({ ...m, data: cropTo(m.data, m.shape, baseShape), shape: [...baseShape] });
    } else {
      warnings.push(`${tensor}: skipping ${m.ref}, shape [${m.shape}] does not match the base's [${baseShape}]`);
    }
  }
  return out;
}

/**
 * How a merge against a base starts: the models brought to the base's shape (see alignToBase),
 * their warnings, and `unchanged`, the base passed through as mergekit does, when none is left.
 */
export function againstBase<T extends Shaped>(input: { tensor: string; shape: number[]; models: readonly T[]; isEmbedding: boolean; base: Float32Array }): {
  models: T[];
  warnings: string[];
  unchanged: TensorMergeOutput | null;
} {
  const warnings: string[] = [];
  const models = alignToBase(input.tensor, input.shape, input.models, input.isEmbedding, warnings);
  const unchanged = models.length === 0 ? { data: input.base.slice(), shape: [...input.shape], diagnostics: null, warnings } : null;
  return { models, warnings, unchanged };
}

/** Crop every input to the common top-left block (linear over embeddings with different vocabularies). */
export function cropToCommon(tensor: string, models: readonly Shaped[], warnings: string[]): { shape: number[]; data: Float32Array[] } {
  const rank = models[0].shape.length;
  if (models.some((m) => m.shape.length !== rank)) {
    throw new UserError(`tensor ${tensor}: models have different ranks (${models.map((m) => `${m.ref} [${m.shape}]`).join(', ')})`);
  }
  const shape = models[0].shape.map((_, d) => Math.min(...models.map((m) => m.shape[d])));
  const data = models.map((m) => {
    if (sameShape(m.shape, shape)) return m.data;
    warnings.push(`${tensor}: using the top-left [${shape}] block of ${m.ref}'s [${m.shape}]`);
    return cropTo(m.data, m.shape, shape);
  });
  return { shape, data };
}

/** Cosine with 0 for a zero vector (JSON has no NaN). */
export function cosineOf(dot: number, aSq: number, bSq: number): number {
  const den = Math.sqrt(aSq) * Math.sqrt(bSq);
  return den > 0 ? dot / den : 0;
}

export interface DiagnosticsParts {
  tensor: string;
  refs: string[];
  numel: number;
  gram: Gram;
  kept: number[];
  rescale: number[];
  signConflicts: number;
  mergedDeltaL2sq: number;
}

export function buildDiagnostics(p: DiagnosticsParts): TensorDiagnostics {
  const n = p.refs.length;
  const taskVectorNorm: Record<string, number> = {};
  const cosine: Record<string, number> = {};
  const keptFraction: Record<string, number> = {};
  const rescale: Record<string, number> = {};
  const mergedDeltaRelToParent: Record<string, number> = {};
  const mergedDeltaNorm = Math.sqrt(p.mergedDeltaL2sq);
  for (let i = 0; i < n; i++) {
    const ref = p.refs[i];
    const norm = Math.sqrt(p.gram.l2sq[i]);
    taskVectorNorm[ref] = norm;
    keptFraction[ref] = p.numel > 0 ? p.kept[i] / p.numel : 1;
    rescale[ref] = p.rescale[i];
    mergedDeltaRelToParent[ref] = norm > 0 ? mergedDeltaNorm / norm : Infinity;
    for (let j = i + 1; j < n; j++) {
      cosine[`${ref}|${p.refs[j]}`] = cosineOf(p.gram.dot[i * n + j], p.gram.l2sq[i], p.gram.l2sq[j]);
    }
  }
  return {
    tensor: p.tensor,
    layer: layerIndex(p.tensor),
    numel: p.numel,
    taskVectorNorm,
    cosine,
    signConflict: p.numel > 0 ? p.signConflicts / p.numel : 0,
    keptFraction,
    rescale,
    mergedDeltaNorm,
    mergedDeltaRelToParent,
  };
}

export function toRescaleRule(v: boolean | RescaleRule): RescaleRule {
  if (v === true) return 'l1';
  if (v === false) return 'none';
  return v;
}

/** Zod issue text for a parameter that has no default. */
export function requiredNumber(name: string) {
  return (iss: { input?: unknown }) =>
    iss.input === undefined ? `missing required parameter ${name}` : `parameter ${name} must be a number, got ${JSON.stringify(iss.input)}`;
}
