/**
 * The output vocabulary, built as mergekit builds it (`mergekit/tokenizer/build.py`), as pure
 * functions over parsed tokenizer files:
 * - `stripTokenizer`: `get_stripped_tokenizer`, dropping the tokens a model has no embedding row
 *   for (id >= its config vocab_size), BPE only;
 * - `unionTokenizer`: `build_union_tokenizer`, the base's tokenizer plus every other model's tokens
 *   as added tokens;
 * - `addMissingTokens`: the `tokenizer.tokens` keys that the vocabulary lacks.
 * Added tokens get ids as Hugging Face tokenizers' `AddedVocabulary::add_tokens` gives them.
 */
import { UserError } from '../util/errors.js';
import { TOKENIZER_JSON, sameFlags, type AddedToken, type Json, type ModelTokenizer } from './files.js';

export type TokenFlags = Omit<AddedToken, 'id'>;

/** A plain token as `tokenizer.add_tokens("text")` adds it: not special, normalized. */
export function plainToken(content: string): TokenFlags {
  return { content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false };
}

function flagsOf(a: AddedToken): TokenFlags {
  const { id: _id, ...flags } = a;
  return flags;
}

/** The added-token table of a tokenizer being extended, with the Rust library's id rule. */
class AddedVocabulary {
  private readonly byId = new Map<number, TokenFlags>();
  private readonly byContent = new Map<string, number>();

  constructor(
    private readonly modelVocab: Map<string, number>,
    added: AddedToken[],
  ) {
    for (const a of added) {
      this.byId.set(a.id, flagsOf(a));
      this.byContent.set(a.content, a.id);
    }
  }

  has(content: string): boolean {
    return this.byContent.has(content) || this.modelVocab.has(content);
  }

  /**
   * `add_tokens([token])`: an identical entry is left alone; text the vocabulary already has keeps
   * its id and takes these flags; new text gets the next id (after the highest added id, or the
   * model vocabulary's size when every added id lies inside the model vocabulary).
   */
  add(token: TokenFlags): void {
    if (token.content === '') return;
    const known = this.byContent.get(token.content);
    if (known !== undefined && sameFlags(this.byId.get(known)!, token)) return;
    let id = known ?? this.modelVocab.get(token.content);
    if (id === undefined) {
      const size = this.modelVocab.size;
      const max = this.byId.size ? Math.max(...this.byId.keys()) : -1;
      id = max < 0 ? size : max >= size || size === 0 ? max + 1 : size;
    }
    this.byId.set(id, { ...token });
    this.byContent.set(token.content, id);
  }

  list(): AddedToken[] {
    return [...this.byId.entries()].map(([id, f]) => ({ id, ...f })).sort((a, b) => a.id - b.id);
  }
}

/** tokenizer.json and tokenizer_config.json with a new added-token table (and optionally a new model block). */
function withAdded(t: ModelTokenizer, added: AddedToken[], model?: Json): ModelTokenizer {
  const json: Json = { ...t.json, added_tokens: added.map((a) => ({ id: a.id, content: a.content, single_word: a.single_word, lstrip: a.lstrip, rstrip: a.rstrip, normalized: a.normalized, special: a.special })) };
  if (model) json.model = model;
  let config = t.config;
  if (config) {
    const decoder: Json = {};
    for (const a of added) decoder[String(a.id)] = { content: a.content, lstrip: a.lstrip, normalized: a.normalized, rstrip: a.rstrip, single_word: a.single_word, special: a.special };
    config = { ...config, added_tokens_decoder: decoder };
  }
  const modelVocab = model ? new Map([...t.modelVocab].filter(([tok]) => (model.vocab as Json)[tok] !== undefined)) : t.modelVocab;
  const vocab = new Map(modelVocab);
  for (const a of added) vocab.set(a.content, a.id);
  return { ...t, json, config, modelVocab, added, vocab };
}

/**
 * The tokenizer without the tokens whose id is at least `vocabSize` (mergekit
 * `get_stripped_tokenizer`): they are dropped from the model vocabulary, the added tokens, and the
 * BPE merges that use one of them. Only BPE tokenizers can be stripped, as in mergekit.
 */
export function stripTokenizer(t: ModelTokenizer, vocabSize: number, who: string): ModelTokenizer {
  const unused = new Set([...t.vocab].filter(([, id]) => id >= vocabSize).map(([tok]) => tok));
  if (unused.size === 0) return t;
  if (t.modelType !== 'BPE') {
    throw new UserError(
      `${t.origin}: ${who} has ${unused.size} token(s) with ids >= its vocab_size ${vocabSize}, and its ${t.modelType} tokenizer cannot be stripped of them (only BPE can, as in mergekit); use tokenizer_source: union or another model's tokenizer`,
      { file: t.origin },
    );
  }
  const model = t.json.model as Json;
  const vocab: Json = {};
  for (const [tok, id] of Object.entries(model.vocab as Json)) if (!unused.has(tok)) vocab[tok] = id;
  const merges = ((model.merges ?? []) as unknown[]).filter((m) => {
    const parts = typeof m === 'string' && m.split(' ').length === 2 ? m.split(' ') : Array.isArray(m) ? (m as string[]) : null;
    if (!parts) throw new UserError(`${t.origin}: ${TOKENIZER_JSON}: unexpected BPE merge ${JSON.stringify(m)}`, { file: t.origin, field: 'model.merges' });
    return !parts.some((p) => unused.has(p));
  });
  return withAdded(t, t.added.filter((a) => a.id < vocabSize), { ...model, vocab, merges });
}

export interface UnionInput {
  ref: string;
  tokenizer: ModelTokenizer;
  /** The model's config vocab_size (its embedding rows), or its tokenizer's model vocabulary size. */
  vocabSize: number;
}

/**
 * mergekit `build_union_tokenizer`. `base` is the stripped base tokenizer; `models` every input in
 * recipe order, base first. Each model's tokens below its vocab_size are collected; those that are
 * added tokens somewhere keep the first settings seen; the others, when the base lacks them, join as
 * plain added tokens first, then the added tokens not yet present. mergekit walks each vocabulary in
 * hash-map order, so the ids of plain tokens new to the base were not reproducible; we walk it by id.
 */
export function unionTokenizer(base: ModelTokenizer, models: UnionInput[], warnings: string[]): ModelTokenizer {
  const plain = new Set<string>();
  const added = new Map<string, TokenFlags>();
  const conflicting = new Set<string>();
  for (const { ref, tokenizer, vocabSize } of models) {
    let beyond = 0;
    for (const [tok, id] of [...tokenizer.vocab].sort((a, b) => a[1] - b[1])) {
      if (id >= vocabSize) beyond++;
      else plain.add(tok);
    }
    if (beyond) warnings.push(`tokenizer of '${ref}': ${beyond} token(s) have ids >= its vocab_size ${vocabSize} (no embedding row) and are left out of the union`);
    for (const a of tokenizer.added) {
      if (a.id >= vocabSize) continue;
      const seen = added.get(a.content);
      if (seen) {
        if (!sameFlags(seen, a) && !conflicting.has(a.content)) {
          conflicting.add(a.content);
          warnings.push(`token ${JSON.stringify(a.content)} is added with different settings by different models; the settings of the first (in recipe order, the base first) are used`);
        }
        continue;
      }
      added.set(a.content, flagsOf(a));
    }
  }
  const out = new AddedVocabulary(base.modelVocab, base.added);
  for (const tok of plain) if (!added.has(tok) && !base.vocab.has(tok)) out.add(plainToken(tok));
  for (const a of added.values()) out.add(a);
  return withAdded(base, out.list());
}

/** The configured tokens the vocabulary lacks, added as plain tokens; tokens already present are left as they are. */
export function addMissingTokens(t: ModelTokenizer, tokens: string[]): ModelTokenizer {
  const v = new AddedVocabulary(t.modelVocab, t.added);
  let changed = false;
  for (const tok of tokens) {
    if (v.has(tok)) continue;
    v.add(plainToken(tok));
    changed = true;
  }
  return changed ? withAdded(t, v.list()) : t;
}

/** The output vocabulary as an array indexed by id (transformers `get_vocab()` inverted). */
export function vocabById(t: ModelTokenizer): Array<string | undefined> {
  const out: Array<string | undefined> = [];
  for (const [tok, id] of t.vocab) out[id] = tok;
  return out;
}
