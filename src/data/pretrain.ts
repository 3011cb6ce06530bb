/**
 * The zoo's pretraining corpus: plain prose that carries the knowledge the math and chat tasks
 * need (arithmetic facts over the lexicon's ranges, little stories worked out with inline
 * equations, words with their spellings, reversals, case forms, repetitions, quotes, brackets and
 * word counts) and none of the task formats (no `Question:`/`Answer:`, no `####`, no chat tokens).
 *
 * The base must know the facts cold so that a fine-tune only has to teach a format, as real
 * supervised fine-tunes do. So the corpus repeats every arithmetic fact many times, in several
 * phrasings, and runs whole rows of the tables ("7 + 1 = 8, 7 + 2 = 9, ...") so the model can
 * pick up the digit patterns rather than memorise each sum alone.
 *
 * Story phrasings here are the corpus's own (neither the math train nor the eval templates), and
 * a story's number chain always hashes to the train split (`tupleKey` / `splitOf` of the task
 * generator), so no evaluation item appears in pretraining even with different words.
 */
import { ADD_MAX, ITEMS, MUL_MAX, NAMES, NUMBER_WORDS, SUB_MAX, WORDS } from './lexicon.js';
import { applyOp, drawStep, tupleKey, type MathOp, type MathStep } from './math.js';
import { pick, randInt, rng, splitOf, type Rand } from './split.js';
import { UserError } from '../util/errors.js';

export type PretrainSplit = 'train' | 'heldout';

const SIGN: Record<MathOp, string> = { add: '+', sub: '-', mul: '*' };
const WORD_OP: Record<MathOp, string> = { add: 'plus', sub: 'minus', mul: 'times' };

/** A uniformly drawn fact of one operation, inside the lexicon's ranges. */
function drawFact(r: Rand, op: MathOp): [number, number] {
  if (op === 'add') return [randInt(r, 0, ADD_MAX), randInt(r, 0, ADD_MAX)];
  if (op === 'mul') return [randInt(r, 2, MUL_MAX), randInt(r, 2, MUL_MAX)];
  const a = randInt(r, 0, SUB_MAX);
  return [a, randInt(r, 0, a)];
}

// Subtraction has twice as many facts as addition (1,891 vs 961), products only 64.
function drawOp(r: Rand): MathOp {
  const x = r();
  return x < 0.4 ? 'add' : x < 0.88 ? 'sub' : 'mul';
}

function factSentence(r: Rand, op: MathOp, a: number, b: number): string {
  const c = applyOp(op, a, b);
  const k = r();
  if (k < 0.6) return `${a} ${SIGN[op]} ${b} = ${c}.`;
  if (k < 0.75) return `${a} ${WORD_OP[op]} ${b} is ${c}.`;
  if (k < 0.85) {
    if (op === 'add') return `The sum of ${a} and ${b} is ${c}.`;
    if (op === 'sub') return `Take ${b} from ${a} and you get ${c}.`;
    return `${a} groups of ${b} make ${c}.`;
  }
  if (op === 'mul') return `${a} x ${b} = ${c}.`;
  if (op === 'add' && c <= 10) return `${NUMBER_WORDS[a]} plus ${NUMBER_WORDS[b]} is ${NUMBER_WORDS[c]}.`;
  if (op === 'sub' && a <= 10) return `${NUMBER_WORDS[a]} minus ${NUMBER_WORDS[b]} is ${NUMBER_WORDS[c]}.`;
  return `We know that ${a} ${SIGN[op]} ${b} = ${c}.`;
}

function factsDoc(r: Rand): string {
  const kind = r();
  const op = drawOp(r);
  if (kind < 0.35) {
    // A run of a table row: consecutive right operands with one left operand.
    const [a] = drawFact(r, op);
    const len = randInt(r, 3, 6);
    const parts: string[] = [];
    let b = op === 'mul' ? randInt(r, 2, MUL_MAX) : randInt(r, 0, op === 'add' ? ADD_MAX : a);
    for (let i = 0; i < len; i++) {
      const hi = op === 'add' ? ADD_MAX : op === 'sub' ? a : MUL_MAX;
      if (b > hi) break;
      parts.push(`${a} ${SIGN[op]} ${b} = ${applyOp(op, a, b)}`);
      b++;
    }
    if (parts.length === 0) parts.push(`${a} ${SIGN[op]} 0 = ${applyOp(op, a, 0)}`);
    return parts.join(', ') + '.';
  }
  const n = randInt(r, 2, 5);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const o = drawOp(r);
    const [a, b] = drawFact(r, o);
    out.push(factSentence(r, o, a, b));
    // Addition and subtraction are taught together so the model ties c - b = a to a + b = c.
    if (o === 'add' && r() < 0.3) out.push(`${a + b} - ${b} = ${a}.`);
  }
  return out.join(' ');
}

/** A chain of 1-3 steps whose numbers stay inside the ranges, like the task's but drawn here. */
function drawChain(r: Rand): MathStep[] | null {
  const len = r() < 0.4 ? 1 : r() < 0.7 ? 2 : 3;
  const steps: MathStep[] = [];
  let value = 0;
  for (let i = 0; i < len; i++) {
    const op: MathOp = i === 0 && r() < 0.25 ? 'mul' : r() < 0.5 ? 'add' : 'sub';
    const step = drawStep(r, op, i, value);
    if (!step) return null;
    steps.push(step);
    value = step.result;
  }
  return steps;
}

function narrate(r: Rand, n: string, item: string, s: MathStep, first: boolean): string {
  if (s.op === 'mul') return pick(r, [`${n} had ${s.left} bags of ${s.right} ${item} each.`, `${n} got ${s.left} packs with ${s.right} ${item} each.`]);
  if (first) {
    const start = pick(r, [`${n} had ${s.left} ${item}.`, `There were ${s.left} ${item} with ${n}.`]);
    return `${start} ${narrate(r, n, item, { ...s }, false)}`;
  }
  if (s.op === 'add') return pick(r, [`${n} got ${s.right} more ${item}.`, `A friend gave ${n} ${s.right} more.`, `${n} found ${s.right} more ${item}.`]);
  return pick(r, [`${n} gave ${s.right} ${item} away.`, `${n} gave away ${s.right}.`, `${n} put ${s.right} ${item} away.`]);
}

function equation(s: MathStep): string {
  return `${s.left} ${SIGN[s.op]} ${s.right} = ${s.result}`;
}

function storyDoc(r: Rand): string {
  let steps: MathStep[] | null = null;
  // Only chains whose key falls in the train split: the eval problems' number chains never appear.
  while (!steps || splitOf(tupleKey(steps)) !== 'train') steps = drawChain(r);
  const n = pick(r, NAMES);
  const item = pick(r, ITEMS);
  if (r() < 0.5) {
    // Interleaved: each event followed at once by its equation.
    const parts = steps.map((s, i) => {
      const ev = narrate(r, n, item, s, i === 0);
      const eq = pick(r, [`So ${n} had ${equation(s)} ${item}.`, `Now ${n} had ${equation(s)} ${item}.`]);
      return `${ev} ${eq}`;
    });
    return parts.join(' ');
  }
  // Told first, worked out after: the model learns to find each number again in the story.
  const story = steps.map((s, i) => narrate(r, n, item, s, i === 0)).join(' ');
  const work = steps.map((s) => `${n} had ${equation(s)} ${item}.`).join(' ');
  const last = steps[steps.length - 1].result;
  return `${story} ${pick(r, ['Let us count.', 'We can work it out.', 'To find out, count step by step.'])} ${work} In the end ${n} had ${last} ${item}.`;
}

const REPEAT_WORDS = ['two', 'three', 'four', 'five'];

function wordDoc(r: Rand): string {
  const w = pick(r, WORDS);
  const rev = [...w].reverse().join('');
  const k = r();
  if (k < 0.12) return pick(r, [`The word ${w} is spelled ${[...w].join('-')}.`, `${w} has ${w.length} letters: ${[...w].join(' ')}.`]);
  if (k < 0.32) return pick(r, [`${w} spelled backwards is ${rev}.`, `The word ${w} backwards is ${rev}.`, `Backwards, ${w} becomes ${rev}.`, `Read ${w} from the end and you get ${rev}.`]);
  if (k < 0.45) return pick(r, [`${w} in capital letters is ${w.toUpperCase()}.`, `The capital form of ${w} is ${w.toUpperCase()}.`, `${w.toUpperCase()} is ${w} in capitals.`]);
  if (k < 0.52) return pick(r, [`${w.toUpperCase()} in lowercase letters is ${w}.`, `The lowercase form of ${w.toUpperCase()} is ${w}.`]);
  if (k < 0.66) {
    const t = randInt(r, 2, 5);
    const rep = Array.from({ length: t }, () => w).join(' ');
    return pick(r, [`${w} ${REPEAT_WORDS[t - 2]} times is ${rep}.`, `The word ${w} ${t} times: ${rep}.`, `Said ${t} times, ${w} is ${rep}.`]);
  }
  if (k < 0.73) return pick(r, [`In double quotes, ${w} is "${w}".`, `She wrote "${w}" with quotes around it.`, `The word "${w}" has ${w.length} letters.`]);
  if (k < 0.8) return pick(r, [`In square brackets, ${w} is [${w}].`, `He wrote [${w}] with brackets around it.`, `The list [${w}, ${pick(r, WORDS)}] has two words.`]);
  if (k < 0.88) {
    const m = randInt(r, 2, 6);
    const ws = Array.from({ length: m }, () => pick(r, WORDS));
    return pick(r, [`The line "${ws.join(' ')}" has ${m} words.`, `Count the words in ${ws.join(' ')}: there are ${m}.`]);
  }
  return proseDoc(r);
}

function reversalDoc(r: Rand): string {
  const w = pick(r, WORDS);
  const rev = [...w].reverse().join('');
  const k = r();
  if (k < 0.6) return pick(r, [`${w} spelled backwards is ${rev}.`, `The word ${w} backwards is ${rev}.`, `Backwards, ${w} becomes ${rev}.`, `Read ${w} from the end and you get ${rev}.`, `${w} reversed is ${rev}.`]);
  if (k < 0.8) return pick(r, [`${w} in capital letters is ${w.toUpperCase()}.`, `The capital form of ${w} is ${w.toUpperCase()}.`]);
  return `The word ${w} is spelled ${[...w].join('-')}, and backwards ${[...rev].join('-')}.`;
}

export type RequestKind = 'say' | 'reverse' | 'repeat';

/** Who asks whom for which word, what kind of request, and the count for a repeat. */
export interface Request {
  w: string;
  asker: string;
  writer: string;
  n: number;
  kind: RequestKind;
}

/** A request drawn from the lexicon and the names. */
export function drawRequest(r: Rand): Request {
  const w = pick(r, WORDS);
  const asker = pick(r, NAMES);
  const writer = pick(r, NAMES.filter((x) => x !== asker));
  const n = randInt(r, 2, 4);
  const kind = pick(r, ['say', 'reverse', 'repeat'] as const);
  return { w, asker, writer, n, kind };
}

/**
 * Ways the corpus tells who asked for what; `requestDoc` uses the first two of each kind (the
 * zoo's corpus), `composedRequestDoc` all three.
 */
export function askPhrasings(d: Request): string[] {
  const { w, asker, writer, n } = d;
  if (d.kind === 'say') return [`${asker} wanted just the word ${w}`, `${asker} asked ${writer} for the word ${w}`, `${asker} needed the word ${w} from ${writer}`];
  if (d.kind === 'reverse') return [`${asker} wanted ${w} backwards`, `${asker} asked ${writer} to turn ${w} backwards`, `${asker} needed ${w} written backwards`];
  return [`${asker} wanted ${w} ${n} times`, `${asker} asked ${writer} for ${w} ${n} times`, `${asker} needed ${w} written ${n} times`];
}

/** The reply to a request before any condition on it. */
export function plainReply(kind: RequestKind, w: string, n: number): string {
  return kind === 'say' ? w : kind === 'reverse' ? [...w].reverse().join('') : Array.from({ length: n }, () => w).join(' ');
}

/**
 * A request about a word and the reply that fulfils it, as a little scene in prose. The phrasings
 * are the corpus's own (none of the chat task's train or eval sentences) but share their cue words
 * ("times", "backwards", "capital letters", "double quotes", "square brackets"), the way web text
 * teaches a base model what such requests mean.
 */
function requestDoc(r: Rand): string {
  const d = drawRequest(r);
  const { w, writer, n, kind } = d;
  const ask = pick(r, askPhrasings(d).slice(0, 2));
  const cond = pick(r, ['none', 'none', 'capital', 'lower', 'quotes', 'brackets', 'end', 'keyword'] as const);
  const c = withCondition(r, w, plainReply(kind, w, n), cond);
  return `${[ask, ...(c.ask ? [c.ask] : [])].join(', ')}. ${writer} wrote: ${c.reply}`;
}

export type RequestCondition = 'none' | 'capital' | 'lower' | 'quotes' | 'brackets' | 'end' | 'keyword';

/**
 * One condition on the reply to a request about `w`, in the corpus's words, and the reply that
 * meets it (an added or last word is another lexicon word, drawn from `r`).
 */
export function withCondition(r: Rand, w: string, reply: string, cond: RequestCondition): { ask?: string; reply: string } {
  const others = WORDS.filter((x) => x !== w);
  switch (cond) {
    case 'none':
      return { reply };
    case 'keyword': {
      const k = pick(r, others);
      return { ask: `with the word ${k} in it too`, reply: `${reply} ${k}` };
    }
    case 'end': {
      const e = pick(r, others);
      return { ask: `with ${e} as the last word`, reply: `${reply} ${e}` };
    }
    case 'capital':
      return { ask: 'all in capital letters', reply: reply.toUpperCase() };
    case 'lower':
      return { ask: 'in lowercase letters', reply };
    case 'quotes':
      return { ask: 'inside double quotes', reply: `"${reply}"` };
    case 'brackets':
      return { ask: 'inside square brackets', reply: `[${reply}]` };
  }
}

type RequestMod = 'capital' | 'lower' | 'quotes' | 'brackets' | 'end' | 'keyword' | 'fewer' | 'atleast';
const REQUEST_MODS: readonly RequestMod[] = ['capital', 'lower', 'quotes', 'brackets', 'end', 'end', 'keyword', 'keyword', 'fewer', 'atleast'];
const countWords = (s: string) => (s.match(/\w+/g) ?? []).length;

/**
 * A request with up to two conditions on the reply, told as prose, and the reply that meets all
 * of them. Conditions apply in one fixed order (padding, added word, last word, length, case,
 * wrapping) so the reply is unambiguous. The phrasings are the corpus's own.
 */
function composedRequestDoc(r: Rand): string {
  const d = drawRequest(r);
  const { w, writer, n, kind } = d;
  let body = plainReply(kind, w, n);
  const ask = pick(r, askPhrasings(d));
  const mods: RequestMod[] = [];
  const nMods = randInt(r, kind === 'say' ? 1 : 0, 2);
  while (mods.length < nMods) {
    const m = pick(r, REQUEST_MODS);
    if (!mods.includes(m)) mods.push(m);
  }
  const has = (m: RequestMod) => mods.includes(m);
  if ((has('capital') && has('lower')) || (has('quotes') && has('brackets')) || (has('fewer') && has('atleast')) || (kind === 'repeat' && has('atleast'))) return composedRequestDoc(r);
  const others = WORDS.filter((x) => x !== w);
  const k = pick(r, others);
  const e = pick(r, others.filter((x) => x !== k));
  const asks: string[] = [];
  if (has('atleast')) {
    const m = randInt(r, 2, 4);
    const unit = body;
    while (countWords(body) < m) body = `${body} ${unit}`;
    asks.push(pick(r, [`at least ${m} words long`, `with no fewer than ${m} words`]));
  }
  if (has('keyword')) {
    body = `${body} ${k}`;
    asks.push(pick(r, [`with the word ${k} in it too`, `and also the word ${k}`, `with ${k} somewhere in it`, `and ${k} had to appear in it`]));
  }
  if (has('end')) {
    body = `${body} ${e}`;
    asks.push(pick(r, [`with ${e} as the last word`, `ending on the word ${e}`, `and the last word had to be ${e}`, `so that ${e} came last`]));
  }
  if (has('fewer')) {
    const m = countWords(body) + randInt(r, 1, 3);
    asks.push(pick(r, [`in fewer than ${m} words`, `shorter than ${m} words`]));
  }
  if (has('capital')) {
    body = body.toUpperCase();
    asks.push(pick(r, ['all in capital letters', 'in big capital letters']));
  }
  if (has('lower')) asks.push(pick(r, ['in lowercase letters', 'all in small lowercase letters']));
  if (has('quotes')) {
    body = `"${body}"`;
    asks.push(pick(r, ['inside double quotes', 'between double quotes']));
  }
  if (has('brackets')) {
    body = `[${body}]`;
    asks.push(pick(r, ['inside square brackets', 'between square brackets']));
  }
  return `${[ask, ...asks].join(', ')}. ${writer} wrote: ${body}`;
}

const CONSONANTS = 'bcdfghjklmnprstvwz';
const VOWELS = 'aeiou';

/** A made-up word of 3-7 letters, mostly pronounceable, that no lexicon prior can complete. */
function nonceWord(r: Rand): string {
  const len = randInt(r, 3, 7);
  let s = '';
  for (let i = 0; i < len; i++) {
    const set = r() < 0.15 ? 'abcdefghijklmnopqrstuvwxyz' : i % 2 === 0 ? CONSONANTS : VOWELS;
    s += set[Math.floor(r() * set.length)];
  }
  return s;
}

/** Word or made-up word: copying has to work for both. */
const anyWord = (r: Rand) => (r() < 0.5 ? nonceWord(r) : pick(r, WORDS));

/**
 * Text that repeats words seen earlier in the same document, often made-up ones, so the only way
 * to predict them is to find and copy them: the copying that requests about a given word rely on.
 */
function copyDoc(r: Rand): string {
  const a = anyWord(r);
  const b = anyWord(r);
  const c = anyWord(r);
  const name = pick(r, NAMES);
  return pick(r, [
    () => `The new word was ${a}. ${name} said it again: ${a}.`,
    () => `${name} wrote down ${a}, ${b} and ${c}. Later ${name} read them out: ${a}, ${b}, ${c}.`,
    () => `${name} named the ${pick(r, NOUN)} ${a}, and from then on everyone called it ${a}.`,
    () => `First came ${a}, then ${b}. Put together: ${a} ${b}.`,
    () => `${name} swapped ${a} and ${b} and got ${b} ${a}.`,
    () => `Of ${a} and ${b}, the second one is ${b} and the first one is ${a}.`,
    () => `A sign said ${a.toUpperCase()}. In small letters that is ${a}.`,
    () => `${name} put ${b} after ${a}: ${a} ${b}. Then ${c} after that: ${a} ${b} ${c}.`,
    () => {
      const line = [a, b, c, nonceWord(r)].slice(0, randInt(r, 2, 4)).join(' ');
      return `${name} heard ${line}, and said back ${line}.`;
    },
  ])();
}

/** A story told in the present tense, then worked out one equation per line. */
function workedDoc(r: Rand): string {
  let steps: MathStep[] | null = null;
  while (!steps || splitOf(tupleKey(steps)) !== 'train') steps = drawChain(r);
  const n = pick(r, NAMES);
  const item = pick(r, ITEMS);
  const told = steps.map((s, i) => {
    if (s.op === 'mul') return pick(r, [`${n} packs ${s.left} crates with ${s.right} ${item} in each.`, `${n} owns ${s.left} sacks of ${s.right} ${item} each.`]);
    const start = i === 0 ? `${pick(r, [`${n} owns ${s.left} ${item}.`, `${n} keeps ${s.left} ${item} in a box.`])} ` : '';
    if (s.op === 'add') return start + pick(r, [`${n} collects ${s.right} more.`, `A friend brings ${s.right} more ${item}.`, `${n} wins ${s.right} more ${item}.`]);
    return start + pick(r, [`${n} sends ${s.right} ${item} away.`, `${n} hands ${s.right} away.`, `${n} puts ${s.right} of the ${item} away.`]);
  });
  const lines = steps.map((s) => `${n} has ${equation(s)} ${item}.`);
  return `${told.join(' ')}\n${lines.join('\n')}\nIn the end ${n} has ${steps[steps.length - 1].result} ${item}.`;
}

const ADJ = ['red', 'blue', 'green', 'gold', 'happy', 'quiet', 'fast', 'slow', 'cold', 'warm', 'dark', 'small', 'big', 'soft', 'hard', 'sweet', 'sour'];
const NOUN = ['cat', 'dog', 'bird', 'fish', 'horse', 'mouse', 'sheep', 'goat', 'frog', 'duck', 'bear', 'wolf', 'lion', 'tiger', 'tree', 'house', 'boat', 'ship', 'train', 'car', 'river', 'road', 'door', 'lamp', 'desk', 'chair', 'kite', 'ball', 'book'];
const VERB = ['saw', 'liked', 'found', 'painted', 'watched', 'drew', 'wanted', 'lost'];
const PLACE = ['near the river', 'by the door', 'under the tree', 'on the road', 'in the house', 'at the lake', 'in the sun', 'in the rain', 'in the snow'];

function proseDoc(r: Rand): string {
  const n = pick(r, NAMES);
  const s1 = `${n} ${pick(r, VERB)} a ${pick(r, ADJ)} ${pick(r, NOUN)} ${pick(r, PLACE)}.`;
  const s2 = pick(r, [
    `It was ${pick(r, ADJ)} and ${pick(r, ADJ)}.`,
    `${pick(r, NAMES)} had ${randInt(r, 2, 9)} ${pick(r, ITEMS)} too.`,
    `The ${pick(r, NOUN)} was ${pick(r, ADJ)}.`,
    `Then ${n} drank some ${pick(r, ['tea', 'coffee', 'milk', 'water'])} with ${pick(r, ['bread', 'sugar', 'a lemon', 'an apple', 'a grape'])}.`,
    `The wind came from the ${pick(r, ['north', 'south', 'east', 'west'])}.`,
  ]);
  return r() < 0.5 ? s1 : `${s1} ${s2}`;
}

export interface CorpusMix {
  facts: number;
  stories: number;
  words: number;
  prose: number;
  /** Extra documents of word reversals, capitals and spellings (the word facts slowest to learn). */
  reversals?: number;
  /** Requests about words told as prose with the reply that fulfils them (instruction-following knowledge). */
  requests?: number;
  /** Stories worked out one present-tense equation per line. */
  worked?: number;
  /**
   * Repeated and made-up words to copy. A base trained on a quarter of them beside the rest of the
   * corpus (COPY_PLAN's last stage) gives fine-tunes that can be merged; more of them, or the
   * `composed` requests, cost the base its word reversals without teaching it to copy
   * (research/zoo-history.md).
   */
  copy?: number;
  /** Requests with up to two conditions on the reply (added and last words, length, case, wrapping). */
  composed?: number;
}

/** Share of each document kind. Arithmetic gets most of the budget: it is the hardest to learn. */
export const DEFAULT_MIX: CorpusMix = { facts: 0.38, stories: 0.3, words: 0.18, prose: 0.04, reversals: 0.1 };

/**
 * The corpus beside a share `copy` of copy documents: cycle 1's kinds plus the continued cycle's
 * requests and worked stories, scaled to 1 - copy (COPY_PLAN's last stage).
 */
export function keptCorpusMix(copy: number): CorpusMix {
  const keep = { facts: 0.3, stories: 0.2, words: 0.12, prose: 0.04, reversals: 0.08, requests: 0.16, worked: 0.1 };
  return { ...(Object.fromEntries(Object.entries(keep).map(([k, v]) => [k, v * (1 - copy)])) as typeof keep), copy };
}

/** One document of the corpus. */
export function pretrainDocument(r: Rand, mix: CorpusMix = DEFAULT_MIX): string {
  const total = mix.facts + mix.stories + mix.words + mix.prose + (mix.reversals ?? 0) + (mix.requests ?? 0) + (mix.worked ?? 0) + (mix.composed ?? 0) + (mix.copy ?? 0);
  let x = r() * total;
  if ((x -= mix.facts) < 0) return factsDoc(r);
  if ((x -= mix.stories) < 0) return storyDoc(r);
  if ((x -= mix.words) < 0) return wordDoc(r);
  if ((x -= mix.prose) < 0) return proseDoc(r);
  if ((x -= mix.reversals ?? 0) < 0) return reversalDoc(r);
  if ((x -= mix.requests ?? 0) < 0) return requestDoc(r);
  if ((x -= mix.composed ?? 0) < 0) return composedRequestDoc(r);
  if ((x -= mix.copy ?? 0) < 0) return copyDoc(r);
  return workedDoc(r);
}

function pretrainSeed(split: PretrainSplit, seed: number): number {
  return (Math.imul(seed >>> 0, 0x85ebca6b) ^ (split === 'train' ? 0x2c1b3c6d : 0x297a2d39)) >>> 0;
}

/** An endless, seeded stream of documents (the training stream of `split`). */
export function* pretrainStream(split: PretrainSplit, seed: number, mix: CorpusMix = DEFAULT_MIX): Generator<string> {
  const r = rng(pretrainSeed(split, seed));
  for (;;) yield pretrainDocument(r, mix);
}

/**
 * `n` documents, deterministic in (split, n, seed). `heldout` draws from a separate stream for
 * perplexity evaluation (same distribution, different draws).
 */
export function pretrainDocuments(split: PretrainSplit, n: number, seed: number): string[] {
  if (!Number.isInteger(n) || n < 0) throw new UserError(`pretrainDocuments: n must be a non-negative integer, got ${n}`, { field: 'n' });
  const out: string[] = [];
  const it = pretrainStream(split, seed);
  while (out.length < n) out.push(it.next().value as string);
  return out;
}

/** Every fact the corpus teaches, as `a op b = c` strings without the period (for probes and tests). */
export function allFacts(): string[] {
  const out: string[] = [];
  for (let a = 0; a <= ADD_MAX; a++) for (let b = 0; b <= ADD_MAX; b++) out.push(`${a} + ${b} = ${a + b}`);
  for (let a = 0; a <= SUB_MAX; a++) for (let b = 0; b <= a; b++) out.push(`${a} - ${b} = ${a - b}`);
  for (let a = 2; a <= MUL_MAX; a++) for (let b = 2; b <= MUL_MAX; b++) out.push(`${a} * ${b} = ${a * b}`);
  return out;
}
