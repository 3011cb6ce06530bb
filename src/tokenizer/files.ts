/**
 * A model's Hugging Face tokenizer files, read as transformers' fast tokenizer sees them:
 * `tokenizer.json` (the model vocabulary and the added tokens), `tokenizer_config.json` and
 * `special_tokens_map.json`. `vocab` is what `tokenizer.get_vocab()` returns (model vocabulary and
 * added tokens); `added` is `added_tokens_decoder`, sorted by id.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.js';

export const TOKENIZER_JSON = 'tokenizer.json';
export const TOKENIZER_CONFIG = 'tokenizer_config.json';
export const SPECIAL_TOKENS_MAP = 'special_tokens_map.json';

/** One entry of tokenizer.json's `added_tokens` (the flags are the Rust AddedToken's). */
export interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export type Json = Record<string, unknown>;

export interface ModelTokenizer {
  /** Where it was read from (a folder, or a planned stage output), for messages. */
  origin: string;
  json: Json;
  config: Json | null;
  specialTokensMap: Json | null;
  /** `model.type` of tokenizer.json: BPE, WordLevel, WordPiece, Unigram. */
  modelType: string;
  /** token -> id in the model vocabulary alone. */
  modelVocab: Map<string, number>;
  /** Added tokens sorted by id. */
  added: AddedToken[];
  /** token -> id over both (transformers `get_vocab()`); an added token wins over a model entry of the same text. */
  vocab: Map<string, number>;
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function sameFlags(a: Omit<AddedToken, 'id'>, b: Omit<AddedToken, 'id'>): boolean {
  return a.content === b.content && a.single_word === b.single_word && a.lstrip === b.lstrip && a.rstrip === b.rstrip && a.normalized === b.normalized && a.special === b.special;
}

/** The model vocabulary of a tokenizer.json `model` block (Unigram lists pieces, the others map them). */
function modelVocabOf(model: Json, origin: string): Map<string, number> {
  const out = new Map<string, number>();
  const v = model.vocab;
  if (model.type === 'Unigram') {
    if (!Array.isArray(v)) throw new UserError(`${origin}: ${TOKENIZER_JSON}: model.vocab of a Unigram model must be a list of [piece, score]`, { file: origin, field: 'model.vocab' });
    v.forEach((e, i) => {
      if (Array.isArray(e) && typeof e[0] === 'string' && !out.has(e[0])) out.set(e[0], i);
    });
    return out;
  }
  if (!isObject(v)) throw new UserError(`${origin}: ${TOKENIZER_JSON}: model.vocab must map tokens to ids`, { file: origin, field: 'model.vocab' });
  for (const [tok, id] of Object.entries(v)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new UserError(`${origin}: ${TOKENIZER_JSON}: model.vocab[${JSON.stringify(tok)}] is ${JSON.stringify(id)}, expected a token id`, { file: origin, field: 'model.vocab' });
    out.set(tok, id);
  }
  return out;
}

function addedOf(json: Json, origin: string): AddedToken[] {
  const list = json.added_tokens ?? [];
  if (!Array.isArray(list)) throw new UserError(`${origin}: ${TOKENIZER_JSON}: added_tokens must be a list`, { file: origin, field: 'added_tokens' });
  return list
    .map((e, i): AddedToken => {
      if (!isObject(e) || typeof e.id !== 'number' || typeof e.content !== 'string') {
        throw new UserError(`${origin}: ${TOKENIZER_JSON}: added_tokens[${i}] needs a numeric id and a string content`, { file: origin, field: `added_tokens[${i}]` });
      }
      return {
        id: e.id,
        content: e.content,
        single_word: e.single_word === true,
        lstrip: e.lstrip === true,
        rstrip: e.rstrip === true,
        // Absent flags take the Rust AddedToken defaults (normalized true, the rest false).
        normalized: e.normalized !== false,
        special: e.special === true,
      };
    })
    .sort((a, b) => a.id - b.id);
}

/** Parse the files of a tokenizer; `origin` names them in errors. */
export function parseTokenizer(files: { json: Json; config: Json | null; specialTokensMap: Json | null }, origin: string): ModelTokenizer {
  const model = files.json.model;
  if (!isObject(model) || typeof model.type !== 'string') {
    throw new UserError(`${origin}: ${TOKENIZER_JSON} has no model.type; expected a Hugging Face tokenizers file`, { file: origin, field: 'model' });
  }
  const modelVocab = modelVocabOf(model, origin);
  const added = addedOf(files.json, origin);
  const vocab = new Map(modelVocab);
  for (const a of added) vocab.set(a.content, a.id);
  return { origin, json: files.json, config: files.config, specialTokensMap: files.specialTokensMap, modelType: model.type, modelVocab, added, vocab };
}

async function readJsonIfPresent(file: string): Promise<Json | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UserError(`${file}: cannot read (${(e as Error).message})`, { file, cause: e });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`, { file, cause: e });
  }
  if (!isObject(v)) throw new UserError(`${file}: expected a JSON object`, { file });
  return v;
}

/** The tokenizer in a model folder, or null when it has no tokenizer.json. */
export async function readModelTokenizer(dir: string): Promise<ModelTokenizer | null> {
  const json = await readJsonIfPresent(path.join(dir, TOKENIZER_JSON));
  if (!json) return null;
  return parseTokenizer(
    { json, config: await readJsonIfPresent(path.join(dir, TOKENIZER_CONFIG)), specialTokensMap: await readJsonIfPresent(path.join(dir, SPECIAL_TOKENS_MAP)) },
    path.join(dir, TOKENIZER_JSON),
  );
}

/** The tokens whose id is below `vocabSize` (the rows a model has), as token -> id. */
export function usedVocab(t: ModelTokenizer, vocabSize: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [tok, id] of t.vocab) if (id < vocabSize) out.set(tok, id);
  return out;
}
