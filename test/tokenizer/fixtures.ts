/** Tiny Llama folders with Hugging Face BPE tokenizer files, like mergekit's tests/test_tokenizer.py builds them. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tinyLlamaShapes, writeTinyLlama } from '../merge/tiny-llama.js';

export interface Added {
  id: number;
  content: string;
  special: boolean;
}

export const SPECIALS: Added[] = [
  { id: 0, content: '<unk>', special: true },
  { id: 1, content: '<s>', special: true },
  { id: 2, content: '</s>', special: true },
];

/** The base vocabulary: three specials and five letters. */
export const BASE_VOCAB = ['<unk>', '<s>', '</s>', 'a', 'b', 'c', 'd', 'e'];

export function addedEntry(a: Added) {
  return { id: a.id, content: a.content, single_word: false, lstrip: false, rstrip: false, normalized: !a.special, special: a.special };
}

/** tokenizer.json, tokenizer_config.json and special_tokens_map.json for a BPE model vocabulary plus added tokens. */
export async function writeTokenizer(dir: string, vocab: string[], added: Added[], extra: { merges?: string[] } = {}): Promise<void> {
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map(addedEntry),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: Object.fromEntries(vocab.map((t, i) => [t, i])), merges: extra.merges ?? [] },
  };
  const decoder = Object.fromEntries(added.map((a) => [String(a.id), { content: a.content, lstrip: false, normalized: !a.special, rstrip: false, single_word: false, special: a.special }]));
  const config = { add_bos_token: true, add_eos_token: false, added_tokens_decoder: decoder, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', model_max_length: 2048, tokenizer_class: 'LlamaTokenizer' };
  await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(json, null, 2));
  await fs.writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
  await fs.writeFile(path.join(dir, 'special_tokens_map.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' }, null, 2));
}

/** A tiny Llama whose embeddings have `rows` rows (config vocab_size = rows) and the given tokenizer. */
export async function writeTokenizedModel(dir: string, opts: { seed: number; rows: number; vocab: string[]; added: Added[]; dtype?: 'F32' | 'BF16' }): Promise<void> {
  await writeTinyLlama(dir, { seed: opts.seed, baseSeed: 1, deltaScale: 0.2, dtype: opts.dtype, shapes: tinyLlamaShapes({ vocab: opts.rows }) });
  await writeTokenizer(dir, opts.vocab, opts.added);
}
