/**
 * Chat prompts in IFEval's format (`key`, `prompt`, `instruction_id_list`, `kwargs`), each a
 * simple request about a lexicon word plus one or two verifiable instructions, with a short
 * reference response that a program checks (`src/ifeval/`) before the item is kept.
 *
 * Train and eval are disjoint in phrasings (every request and instruction sentence belongs to
 * one split) and in content: a prompt's tuple (request, word, count, instructions with their
 * words and numbers) hashes to one split via `splitOf`, so no eval item is a train item in other
 * words. Words themselves are shared, as numbers are in the math set: they are the vocabulary
 * the base learned in pretraining. (Splitting the words too made the chat fine-tune
 * memorise the train words and answer eval prompts with them: 23% prompt-level strict.)
 * Phrasings of one instruction share their cue words ("capital letters", "double quotes",
 * "backwards", "Also", "last word", ...) and no other instruction uses them (a keyword instruction
 * saying "the word {k}" like the say request gets confused with it by the fine-tune), and
 * train has many phrasings, so the format transfers to the unseen eval ones.
 */
import PHRASINGS from './chat-phrasings.json' with { type: 'json' };
import { WORDS } from './lexicon.js';
import { drawDistinct, pick, randInt, rng, splitOf, splitSeed, type Rand, type Split } from './split.js';
import { checkAll } from '../ifeval/registry.js';

export interface ChatPrompt {
  key: number;
  prompt: string;
  instruction_id_list: string[];
  kwargs: Record<string, unknown>[];
  /** A correct reference response: it passes every listed instruction under the strict check. */
  response: string;
}

/** Sentences per split; the lists live in chat-phrasings.json (one sentence belongs to one split). */
type Phrasings = Record<Split, readonly string[]>;

type RequestKind = 'say' | 'reverse' | 'repeat';
const REQUEST: Record<RequestKind, Phrasings> = PHRASINGS.request;

type Modifier = 'capital' | 'lowercase' | 'quotation' | 'brackets' | 'end' | 'keyword' | 'words_less' | 'words_least';
const MODIFIER_ID: Record<Modifier, string> = {
  capital: 'change_case:english_capital',
  lowercase: 'change_case:english_lowercase',
  quotation: 'startend:quotation',
  brackets: 'mergelab:brackets',
  end: 'startend:end_checker',
  keyword: 'keywords:existence',
  words_less: 'length_constraints:number_words',
  words_least: 'length_constraints:number_words',
};
const MODIFIER: Record<Modifier, Phrasings> = PHRASINGS.modifier;

/** Every sentence pattern of a split; the disjointness test reads these. */
export function chatPhrasings(split: Split): string[] {
  return [...Object.values(REQUEST), ...Object.values(MODIFIER)].flatMap((p) => [...p[split]]);
}

/** Pairs that cannot both hold, or whose reference answer would be ambiguous. */
function compatible(mods: readonly Modifier[], request: RequestKind): boolean {
  const has = (m: Modifier) => mods.includes(m);
  if (has('capital') && has('lowercase')) return false;
  if (has('quotation') && has('brackets')) return false;
  // IFEval's end check strips double quotes but not brackets.
  if (has('end') && has('brackets')) return false;
  if (has('words_less') && has('words_least')) return false;
  // Padding to N words would break "exactly n times".
  if (request === 'repeat' && has('words_least')) return false;
  return true;
}

const ALL_MODIFIERS = Object.keys(MODIFIER) as Modifier[];

function fill(pattern: string, v: Record<string, string | number>): string {
  return pattern.replace(/\{(\w)\}/g, (_, k: string) => String(v[k]));
}

const countWords = (s: string) => (s.match(/\w+/g) ?? []).length;

/** The split-defining content of a prompt: request, word, count and instructions with their arguments. */
function contentKey(request: RequestKind, w: string, n: number, mods: ReadonlyArray<readonly [Modifier, string | number]>): string {
  return `chat:${request}:${w}:${request === 'repeat' ? n : ''}|${mods.map(([m, a]) => `${m}=${a}`).join(',')}`;
}

function drawOne(r: Rand, split: Split, words: readonly string[]): Omit<ChatPrompt, 'key'> | null {
  const request = pick(r, ['say', 'reverse', 'repeat'] as const);
  const w = pick(r, words);
  const n = randInt(r, 2, 4);
  // The request itself is checkable for reverse/repeat, so those carry at most one modifier.
  const nMods = request === 'say' ? randInt(r, 1, 2) : randInt(r, 0, 1);
  const mods: Modifier[] = [];
  while (mods.length < nMods) {
    const m = pick(r, ALL_MODIFIERS);
    if (!mods.includes(m)) mods.push(m);
  }
  if (!compatible(mods, request)) return null;
  // Apply in a fixed order so the reference is unambiguous: content, length, appended words, case, wrapping.
  mods.sort((a, b) => ALL_MODIFIERS.indexOf(a) - ALL_MODIFIERS.indexOf(b));

  const ids: string[] = [];
  const kwargs: Record<string, unknown>[] = [];
  let body: string;
  if (request === 'say') body = w;
  else if (request === 'reverse') {
    body = [...w].reverse().join('');
    if (body === w) return null;
    ids.push('mergelab:reverse_word');
    kwargs.push({ word: w });
  } else {
    body = Array.from({ length: n }, () => w).join(' ');
    ids.push('mergelab:repeat_word');
    kwargs.push({ word: w, n });
  }
  const sentences = [fill(pick(r, REQUEST[request][split]), { w, n })];

  const others = words.filter((x) => x !== w && x !== [...w].reverse().join(''));
  const content: Array<readonly [Modifier, string | number]> = [];
  const k = pick(r, others);
  const e = pick(r, others.filter((x) => x !== k));
  if (mods.includes('words_least')) {
    const m = randInt(r, 2, 4);
    content.push(['words_least', m]);
    const unit = body;
    while (countWords(body) < m) body = `${body} ${unit}`;
    ids.push(MODIFIER_ID.words_least);
    kwargs.push({ relation: 'at least', num_words: m });
    sentences.push(fill(pick(r, MODIFIER.words_least[split]), { m }));
  }
  if (mods.includes('keyword')) {
    body = `${body} ${k}`;
    content.push(['keyword', k]);
    ids.push(MODIFIER_ID.keyword);
    kwargs.push({ keywords: [k] });
    sentences.push(fill(pick(r, MODIFIER.keyword[split]), { k }));
  }
  if (mods.includes('end')) {
    body = `${body} ${e}`;
    content.push(['end', e]);
    ids.push(MODIFIER_ID.end);
    kwargs.push({ end_phrase: e });
    sentences.push(fill(pick(r, MODIFIER.end[split]), { e }));
  }
  if (mods.includes('words_less')) {
    const m = countWords(body) + randInt(r, 1, 3);
    content.push(['words_less', m]);
    ids.push(MODIFIER_ID.words_less);
    kwargs.push({ relation: 'less than', num_words: m });
    sentences.push(fill(pick(r, MODIFIER.words_less[split]), { m }));
  }
  for (const m of ['capital', 'lowercase', 'quotation', 'brackets'] as const) {
    if (!mods.includes(m)) continue;
    if (m === 'capital') body = body.toUpperCase();
    if (m === 'lowercase') body = body.toLowerCase();
    if (m === 'quotation') body = `"${body}"`;
    if (m === 'brackets') body = `[${body}]`;
    content.push([m, '']);
    ids.push(MODIFIER_ID[m]);
    kwargs.push({});
    sentences.push(pick(r, MODIFIER[m][split]));
  }
  if (ids.length < 1 || ids.length > 2) return null;
  if (splitOf(contentKey(request, w, n, content)) !== split) return null;
  return { prompt: sentences.join(' '), instruction_id_list: ids, kwargs, response: body };
}

/** First key of each split; eval keys are offset so a key names its split. */
const KEY_BASE: Record<Split, number> = { train: 1, eval: 1_000_001 };

/**
 * `n` distinct prompts of one split, deterministic in (`split`, `n`, `seed`), each with a
 * reference response that passes its own instructions.
 */
export function chatPrompts(split: Split, n: number, seed: number): ChatPrompt[] {
  const r = rng(splitSeed(split, seed) ^ 0x5bd1e995);
  return drawDistinct('chatPrompts', 'prompts', split, n, () => {
    const item = drawOne(r, split, WORDS);
    if (!item) return null;
    return {
      key: item.prompt,
      build: (i): ChatPrompt => {
        const verdict = checkAll(item.response, item.instruction_id_list, item.kwargs, item.prompt);
        if (!verdict.every(Boolean)) throw new Error(`chat generator bug: reference "${item.response}" fails ${item.instruction_id_list.join(',')} for "${item.prompt}"`);
        return { key: KEY_BASE[split] + i, ...item };
      },
    };
  });
}
