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
import { WORDS } from './lexicon.js';
import { pick, randInt, rng, splitOf, splitSeed, type Rand, type Split } from './split.js';
import { UserError } from '../util/errors.js';
import { checkAll } from '../ifeval/registry.js';

export interface ChatPrompt {
  key: number;
  prompt: string;
  instruction_id_list: string[];
  kwargs: Record<string, unknown>[];
  /** A correct reference response: it passes every listed instruction under the strict check. */
  response: string;
}

type Phrasings = Record<Split, readonly string[]>;

type RequestKind = 'say' | 'reverse' | 'repeat';
const REQUEST: Record<RequestKind, Phrasings> = {
  say: {
    train: ['Say the word {w}.', 'Write the word {w}.', 'Type the word {w}.', 'Reply with the word {w}.', 'Please say {w}.', 'Output the word {w}.', 'Tell me the word {w}.'],
    eval: ['Give me the word {w}.'],
  },
  reverse: {
    train: ['Spell {w} backwards.', 'Write {w} backwards.', 'Type {w} backwards.', 'Reply with {w} backwards.', 'Please write {w} backwards.', 'Turn the word {w} backwards.', 'Tell me {w} backwards.'],
    eval: ['Say {w} backwards.'],
  },
  repeat: {
    train: ['Repeat the word {w} {n} times.', 'Say {w} {n} times.', 'Type {w} {n} times.', 'Reply with {w} {n} times.', 'Please say the word {w} {n} times.', 'Output {w} {n} times.', 'Tell me {w} {n} times.'],
    eval: ['Write {w} {n} times.'],
  },
};

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
const MODIFIER: Record<Modifier, Phrasings> = {
  capital: {
    train: ['Answer in capital letters.', 'Use capital letters only.', 'Reply in capital letters.', 'Only capital letters, please.', 'Your answer must be in capital letters.', 'Type it in capital letters.'],
    eval: ['Write it all in capital letters.'],
  },
  lowercase: {
    train: ['Answer in lowercase letters.', 'Use lowercase letters only.', 'Reply in lowercase letters.', 'Only lowercase letters, please.', 'Your answer must be in lowercase letters.', 'Type it in lowercase letters.'],
    eval: ['Write it all in lowercase letters.'],
  },
  quotation: {
    train: ['Wrap your answer in double quotes.', 'Put your answer in double quotes.', 'Use double quotes around the answer.', 'Reply inside double quotes.', 'Your answer must be in double quotes.', 'Place the answer between double quotes.'],
    eval: ['Enclose the whole reply in double quotes.'],
  },
  brackets: {
    train: ['Wrap your answer in square brackets.', 'Put your answer in square brackets.', 'Use square brackets around the answer.', 'Reply inside square brackets.', 'Your answer must be in square brackets.', 'Place the answer between square brackets.'],
    eval: ['Enclose the whole reply in square brackets.'],
  },
  end: {
    train: ['Make {e} the last word.', 'The last word must be {e}.', 'Your last word should be {e}.', 'Use {e} as the last word.', 'Put {e} in as the last word.', 'Finish so that {e} is the last word.'],
    eval: ['Let {e} be the last word of the reply.'],
  },
  keyword: {
    train: ['Also include {k}.', 'Also mention {k}.', 'Also use {k}.', 'Also add {k}.', 'Also work in {k}.', 'Also put in {k}.'],
    eval: ['Also make sure {k} appears.'],
  },
  words_less: {
    train: ['Answer in less than {m} words.', 'Use less than {m} words.', 'Reply in less than {m} words.', 'Keep it to less than {m} words.', 'Your answer must have less than {m} words.', 'Write less than {m} words.'],
    eval: ['The reply must have less than {m} words.'],
  },
  words_least: {
    train: ['Answer in at least {m} words.', 'Use at least {m} words.', 'Reply in at least {m} words.', 'Make it at least {m} words.', 'Your answer must have at least {m} words.', 'Write at least {m} words.'],
    eval: ['The reply must have at least {m} words.'],
  },
};

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
  if (!Number.isInteger(n) || n < 0) throw new UserError(`chatPrompts: n must be a non-negative integer, got ${n}`, { field: 'n' });
  const r = rng(splitSeed(split, seed) ^ 0x5bd1e995);
  const words = WORDS;
  const out: ChatPrompt[] = [];
  const seen = new Set<string>();
  let attempts = 0;
  while (out.length < n) {
    if (++attempts > n * 200 + 10_000) {
      throw new UserError(`chatPrompts: could only draw ${out.length} distinct ${split} prompts of the ${n} asked`, { field: 'n' });
    }
    const item = drawOne(r, split, words);
    if (!item || seen.has(item.prompt)) continue;
    const verdict = checkAll(item.response, item.instruction_id_list, item.kwargs, item.prompt);
    if (!verdict.every(Boolean)) throw new Error(`chat generator bug: reference "${item.response}" fails ${item.instruction_id_list.join(',')} for "${item.prompt}"`);
    seen.add(item.prompt);
    out.push({ key: KEY_BASE[split] + out.length, ...item });
  }
  return out;
}
