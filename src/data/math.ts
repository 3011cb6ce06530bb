/**
 * Math word problems in GSM8K's format (`question`, `answer` whose steps carry inline equations
 * and whose last line is `#### N`), built only from the lexicon's names, items and number ranges
 * so the base model has seen every fact a problem needs during pretraining.
 *
 * Train and eval are disjoint in two independent ways:
 * - phrasings: every sentence pattern belongs to exactly one split, so no eval question shares
 *   its template with a train question;
 * - number tuples: the operations and operands of a problem hash to one split (`splitOf`).
 * The phrasings of one operation share a cue word ("more", "away", "each") so a model that
 * learned the format on train phrasings can still read the unseen eval ones.
 */
import { ADD_MAX, ITEMS, MUL_MAX, NAMES, SUB_MAX } from './lexicon.js';
import { drawDistinct, pick, randInt, rng, splitOf, splitSeed, type Rand, type Split } from './split.js';

export interface MathProblem {
  id: string;
  question: string;
  /** GSM8K-style worked answer: one line per step (`Tom has 5 + 7 = 12 apples.`), then `#### N`. */
  answer: string;
  target: number;
}

export type MathOp = 'add' | 'sub' | 'mul';
export interface MathStep { op: MathOp; left: number; right: number; result: number }

type Phrasings = Record<Split, readonly string[]>;

// {N} name, {I} item (plural), {a} start amount, {b} operand of the step.
//
// Train phrasings are built from openers x verb phrases, so the fine-tune sees each operation said
// in dozens of ways and learns to read the number after the verb rather than memorise a frame:
// with 8 hand-written phrasings per slot the math model solved 97% of unseen train-phrased problems
// but 37% of eval-phrased ones. The eval phrasings' verbs ("starts with", "is given", "picks up",
// "trades") and opener ("Later", "In the end") never occur in a train phrasing.

/** Every opener before every sentence (sentences start with a name, which stays capitalised). */
function combine(openers: readonly string[], sentences: readonly string[]): string[] {
  return openers.flatMap((o) => sentences.map((s) => (o === '' ? s : `${o}${s}`)));
}

const TRAIN_OPENERS = ['', 'Then ', 'Next ', 'After that ', 'Soon ', 'On Tuesday '];

const START: Phrasings = {
  train: [
    ...combine(['', 'At first ', 'In the morning ', 'On Monday ', 'Today ', 'To begin, '], [
      '{N} has {a} {I}.', '{N} owns {a} {I}.', '{N} keeps {a} {I}.', '{N} holds {a} {I}.', '{N} collects {a} {I}.',
      '{N} brings {a} {I}.', '{N} carries {a} {I}.', '{N} finds {a} {I}.', '{N} begins with {a} {I}.', '{N} buys {a} {I}.',
    ]),
    '{N} keeps {a} {I} in a box.', 'There are {a} {I} with {N}.', '{N} brings {a} {I} to school.',
  ],
  eval: ['{N} starts with {a} {I}.'],
};
const MUL_START: Phrasings = {
  train: combine(['', 'At first ', 'In the morning '], [
    '{N} has {a} bags with {b} {I} in each bag.', '{N} buys {a} boxes with {b} {I} each.', '{N} packs {a} crates with {b} {I} in each.',
    '{N} gets {a} packs of {b} {I} each.', '{N} has {a} rows with {b} {I} in each row.', '{N} stacks {a} piles of {b} {I} each.',
    '{N} carries {a} baskets with {b} {I} each.', '{N} sets out {a} trays with {b} {I} each.', '{N} loads {a} carts with {b} {I} in each.',
    '{N} opens {a} tins with {b} {I} each.',
  ]),
  eval: ['{N} fills {a} jars with {b} {I} each.'],
};
const ADD_STEP: Phrasings = {
  train: [
    ...combine(TRAIN_OPENERS, [
      '{N} gets {b} more.', '{N} gets {b} more {I}.', '{N} buys {b} more {I}.', '{N} finds {b} more.', '{N} wins {b} more {I}.',
      '{N} makes {b} more.', '{N} collects {b} more {I}.', '{N} receives {b} more {I}.', '{N} earns {b} more.', '{N} grabs {b} more {I}.',
      '{N} is handed {b} more.',
    ]),
    'A friend hands {N} {b} more {I}.',
  ],
  eval: ['Later {N} is given {b} more {I}.', '{N} picks up {b} more.'],
};
const SUB_STEP: Phrasings = {
  train: combine(TRAIN_OPENERS, [
    '{N} gives {b} away.', '{N} gives away {b} {I}.', '{N} throws {b} away.', '{N} sends {b} {I} away.', '{N} hands {b} away.',
    '{N} puts {b} of the {I} away.', '{N} sells {b} {I} away.', '{N} gives {b} {I} away.', '{N} throws away {b} of the {I}.',
    '{N} takes {b} away.', '{N} packs {b} of the {I} away.',
  ]),
  eval: ['Later {N} gives {b} of them away.', '{N} trades {b} {I} away.'],
};
const QUESTION: Phrasings = {
  train: [
    'How many {I} does {N} have now?', 'How many {I} does {N} have?', 'So how many {I} does {N} have?',
    'How many {I} does {N} have after that?', 'Now how many {I} are with {N}?', 'How many {I} does {N} hold now?',
    'At last, how many {I} does {N} have?', 'How many {I} are left with {N}?', 'Finally, how many {I} does {N} own?',
  ],
  eval: ['In the end, how many {I} does {N} have?'],
};

/** Every sentence pattern of a split; the disjointness test reads these. */
export function mathPhrasings(split: Split): string[] {
  return [START, MUL_START, ADD_STEP, SUB_STEP, QUESTION].flatMap((p) => [...p[split]]);
}

const OP_SIGN: Record<MathOp, string> = { add: '+', sub: '-', mul: '*' };

/** The split-defining key of a problem: its operations with their operands, in order. */
export function tupleKey(steps: readonly MathStep[]): string {
  return steps.map((s, i) => (i === 0 ? `${s.op}:${s.left},${s.right}` : `${s.op}:${s.right}`)).join('|');
}

/** The value of one arithmetic fact. */
export function applyOp(op: MathOp, a: number, b: number): number {
  return op === 'add' ? a + b : op === 'sub' ? a - b : a * b;
}

/**
 * Draws step `i` of a chain whose running value is `value`, so every fact stays inside what the
 * base learned: additions of two numbers up to ADD_MAX, subtractions within SUB_MAX with a
 * non-negative result, products from the 2..MUL_MAX tables (first step only). Returns null when
 * the step cannot stay in range. The pretraining corpus draws its stories' chains with it too.
 */
export function drawStep(r: Rand, op: MathOp, i: number, value: number): MathStep | null {
  let left: number;
  let right: number;
  if (op === 'mul') {
    if (i !== 0) return null;
    left = randInt(r, 2, MUL_MAX);
    right = randInt(r, 2, MUL_MAX);
  } else if (op === 'add') {
    left = i === 0 ? randInt(r, 1, ADD_MAX) : value;
    if (left > ADD_MAX) return null;
    right = randInt(r, 1, ADD_MAX);
  } else {
    left = i === 0 ? randInt(r, 2, SUB_MAX) : value;
    if (left > SUB_MAX || left < 1) return null;
    right = randInt(r, 1, left);
  }
  return { op, left, right, result: applyOp(op, left, right) };
}

/** The steps of one chain of operations, or null when the draw cannot be completed in range. */
function drawSteps(r: Rand, ops: readonly MathOp[]): MathStep[] | null {
  const steps: MathStep[] = [];
  let value = 0;
  for (let i = 0; i < ops.length; i++) {
    const step = drawStep(r, ops[i], i, value);
    if (!step) return null;
    steps.push(step);
    value = step.result;
  }
  return steps;
}

const CHAINS: ReadonlyArray<{ ops: MathOp[]; weight: number }> = [
  { ops: ['add'], weight: 4 },
  { ops: ['sub'], weight: 4 },
  { ops: ['mul'], weight: 3 },
  { ops: ['add', 'sub'], weight: 3 },
  { ops: ['sub', 'add'], weight: 3 },
  { ops: ['add', 'add'], weight: 1 },
  { ops: ['sub', 'sub'], weight: 2 },
  { ops: ['mul', 'add'], weight: 2 },
  { ops: ['mul', 'sub'], weight: 2 },
  { ops: ['add', 'sub', 'add'], weight: 1 },
  { ops: ['sub', 'add', 'sub'], weight: 1 },
  { ops: ['mul', 'sub', 'add'], weight: 1 },
  { ops: ['add', 'sub', 'sub'], weight: 1 },
];
const CHAIN_TOTAL = CHAINS.reduce((s, c) => s + c.weight, 0);

function drawChain(r: Rand): MathOp[] {
  let x = r() * CHAIN_TOTAL;
  for (const c of CHAINS) {
    x -= c.weight;
    if (x < 0) return c.ops;
  }
  return CHAINS[CHAINS.length - 1].ops;
}

function fill(pattern: string, v: Record<string, string | number>): string {
  return pattern.replace(/\{(\w)\}/g, (_, k: string) => String(v[k]));
}

/** Renders the worked answer the way GSM8K does: each step's equation inline, then `#### N`. */
export function renderAnswer(name: string, item: string, steps: readonly MathStep[]): string {
  const lines = steps.map((s) => `${name} has ${s.left} ${OP_SIGN[s.op]} ${s.right} = ${s.result} ${item}.`);
  return `${lines.join('\n')}\n#### ${steps[steps.length - 1].result}`;
}

function renderQuestion(r: Rand, split: Split, name: string, item: string, steps: readonly MathStep[]): string {
  const parts: string[] = [];
  const first = steps[0];
  if (first.op === 'mul') {
    parts.push(fill(pick(r, MUL_START[split]), { N: name, I: item, a: first.left, b: first.right }));
  } else {
    parts.push(fill(pick(r, START[split]), { N: name, I: item, a: first.left }));
  }
  for (const [i, s] of steps.entries()) {
    if (i === 0 && s.op === 'mul') continue;
    const pool = s.op === 'add' ? ADD_STEP : SUB_STEP;
    parts.push(fill(pick(r, pool[split]), { N: name, I: item, b: s.right }));
  }
  parts.push(fill(pick(r, QUESTION[split]), { N: name, I: item }));
  return parts.join(' ');
}

/**
 * `n` distinct problems of one split, deterministic in (`split`, `n`, `seed`). Every problem's
 * number tuple hashes to `split`, and its sentences come from that split's phrasings only.
 */
export function mathProblems(split: Split, n: number, seed: number): MathProblem[] {
  const r = rng(splitSeed(split, seed));
  return drawDistinct('mathProblems', 'problems', split, n, () => {
    const steps = drawSteps(r, drawChain(r));
    if (!steps || splitOf(tupleKey(steps)) !== split) return null;
    const name = pick(r, NAMES);
    const item = pick(r, ITEMS);
    const question = renderQuestion(r, split, name, item, steps);
    return {
      key: question,
      build: (i): MathProblem => ({
        id: `math-${split}-${String(i).padStart(5, '0')}`,
        question,
        answer: renderAnswer(name, item, steps),
        target: steps[steps.length - 1].result,
      }),
    };
  });
}

/** Reads the steps back from a worked answer (used by tests and the leak check). */
export function parseSteps(answer: string): MathStep[] {
  const steps: MathStep[] = [];
  for (const m of answer.matchAll(/(\d+) ([-+*]) (\d+) = (\d+)/g)) {
    const op: MathOp = m[2] === '+' ? 'add' : m[2] === '-' ? 'sub' : 'mul';
    steps.push({ op, left: Number(m[1]), right: Number(m[3]), result: Number(m[4]) });
  }
  return steps;
}
