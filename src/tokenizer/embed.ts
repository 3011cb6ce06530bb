/**
 * Embedding rows permuted into the output vocabulary (mergekit `PermutedEmbeddings`), as pure
 * functions. Every model's embedding (and lm_head) becomes [output rows, width]: a token the model
 * has keeps its own row; a token it lacks (or one whose setting says `force`) takes the token's
 * fallback: the configured source, else the base's row when the base has it, the sole owner's row
 * when one model has it, the mean of the owners' rows when several do, zeros when none does.
 * Rows past the vocabulary (pad_to_multiple_of) are the mean of the model's vocabulary rows.
 */
import type { TokenSetting } from './config.js';

/** A token's fallback row. */
export type Fallback = { kind: 'zero' } | { kind: 'row'; ref: string; row: number } | { kind: 'mean'; refs: string[] };

export interface EmbedPlan {
  /** Output tokens (ids 0 .. vocabLen - 1). */
  vocabLen: number;
  /** Output rows: vocabLen padded to pad_to_multiple_of. */
  outRows: number;
  /** Per model: output id -> row of its own embedding, -1 where it lacks the token. */
  perm: Map<string, Int32Array>;
  fallback: Fallback[];
  forced: Uint8Array;
}

export interface EmbedModel {
  ref: string;
  perm: Int32Array;
  /** The model's own vocabulary (for `{kind: model_token, token: ...}`). */
  vocab: Map<string, number>;
}

export interface PlanEmbeddingsInput {
  /** Output vocabulary by id. */
  tokens: Array<string | undefined>;
  outRows: number;
  /** The models merged for this tensor (the base first when there is one). */
  models: EmbedModel[];
  base: string | null;
  settings: Map<string, TokenSetting>;
}

/**
 * Fallback of every output token (mergekit `assign_embedding_sources`, `compute_default_embedding`).
 * A configured source that cannot be honoured (a model outside the merge, a token it lacks) is a
 * problem, where mergekit stops on an assertion.
 */
export function planEmbeddings(p: PlanEmbeddingsInput): { plan: EmbedPlan; problems: string[]; unowned: string[] } {
  const vocabLen = p.tokens.length;
  const byRef = new Map(p.models.map((m) => [m.ref, m]));
  const fallback: Fallback[] = new Array(vocabLen);
  const forced = new Uint8Array(vocabLen);
  const problems: string[] = [];
  const unowned: string[] = [];
  for (let id = 0; id < vocabLen; id++) {
    const tok = p.tokens[id];
    const setting = tok === undefined ? undefined : p.settings.get(tok);
    forced[id] = setting?.force ? 1 : 0;
    const src = setting?.source ?? null;
    if (src) {
      const where = `tokenizer.tokens[${JSON.stringify(tok)}]`;
      if (src.kind === 'zero') {
        fallback[id] = { kind: 'zero' };
        continue;
      }
      const m = byRef.get(src.ref);
      if (!m) {
        problems.push(`${where}: model '${src.ref}' is not one of the models merged here (${p.models.map((x) => `'${x.ref}'`).join(', ')})`);
        fallback[id] = { kind: 'zero' };
        continue;
      }
      if (src.kind === 'model') {
        if (m.perm[id] < 0) problems.push(`${where}: model '${src.ref}' has no token ${JSON.stringify(tok)} (give another model, or {kind: model_token, model: ..., token: ...})`);
        fallback[id] = m.perm[id] >= 0 ? { kind: 'row', ref: m.ref, row: m.perm[id] } : { kind: 'zero' };
        continue;
      }
      const row = src.tokenId ?? m.vocab.get(src.token!);
      if (row === undefined) {
        problems.push(`${where}: model '${src.ref}' has no token ${JSON.stringify(src.token)}`);
        fallback[id] = { kind: 'zero' };
        continue;
      }
      fallback[id] = { kind: 'row', ref: m.ref, row };
      continue;
    }
    const owners = p.models.filter((m) => m.perm[id] >= 0);
    const baseRow = p.base === null ? -1 : (byRef.get(p.base)?.perm[id] ?? -1);
    if (owners.length === 0) {
      if (tok !== undefined) unowned.push(tok);
      fallback[id] = { kind: 'zero' };
    } else if (owners.length === 1) fallback[id] = { kind: 'row', ref: owners[0].ref, row: owners[0].perm[id] };
    else if (baseRow >= 0) fallback[id] = { kind: 'row', ref: p.base!, row: baseRow };
    else fallback[id] = { kind: 'mean', refs: owners.map((m) => m.ref) };
  }
  return { plan: { vocabLen, outRows: p.outRows, perm: new Map(p.models.map((m) => [m.ref, m.perm])), fallback, forced }, problems, unowned };
}

export interface EmbedTensor {
  data: Float32Array;
  rows: number;
}

/**
 * Every model's tensor in the output vocabulary: [outRows, cols] per model of the plan. A row index
 * past a tensor's rows (a configured token_id out of range) reads as zeros.
 */
export function permuteEmbeddings(plan: EmbedPlan, tensors: Map<string, EmbedTensor>, cols: number): Map<string, Float32Array> {
  const defaults = new Map<number, Float32Array>();
  const rowOf = (ref: string, row: number): Float32Array | null => {
    const t = tensors.get(ref);
    return t && row >= 0 && row < t.rows ? t.data.subarray(row * cols, (row + 1) * cols) : null;
  };
  const fallbackRow = (id: number): Float32Array | null => {
    let d = defaults.get(id);
    if (d) return d;
    const f = plan.fallback[id];
    if (f.kind === 'zero') return null;
    if (f.kind === 'row') return rowOf(f.ref, f.row);
    const acc = new Float64Array(cols);
    for (const ref of f.refs) {
      const r = rowOf(ref, plan.perm.get(ref)![id])!;
      for (let c = 0; c < cols; c++) acc[c] += r[c];
    }
    d = Float32Array.from(acc, (v) => v / f.refs.length);
    defaults.set(id, d);
    return d;
  };
  const out = new Map<string, Float32Array>();
  for (const [ref, perm] of plan.perm) {
    const o = new Float32Array(plan.outRows * cols);
    for (let id = 0; id < plan.vocabLen; id++) {
      const own = plan.forced[id] ? null : rowOf(ref, perm[id]);
      const src = own ?? fallbackRow(id);
      if (src) o.set(src, id * cols);
    }
    if (plan.outRows > plan.vocabLen) {
      const mean = new Float64Array(cols);
      for (let id = 0; id < plan.vocabLen; id++) for (let c = 0; c < cols; c++) mean[c] += o[id * cols + c];
      const row = Float32Array.from(mean, (v) => v / plan.vocabLen);
      for (let id = plan.vocabLen; id < plan.outRows; id++) o.set(row, id * cols);
    }
    out.set(ref, o);
  }
  return out;
}
