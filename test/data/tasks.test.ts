import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { mathProblems, parseSteps, tupleKey, type MathProblem } from '../../src/data/math.js';
import { chatPhrasings, chatPrompts, type ChatPrompt } from '../../src/data/chat.js';
import { ADD_MAX, ITEMS, MUL_MAX, NAMES, SUB_MAX, WORDS } from '../../src/data/lexicon.js';
import { checkAll } from '../../src/ifeval/registry.js';
import { TASK_DATA, toJsonl } from '../../src/zoo/taskData.js';

const ROOT = path.resolve(__dirname, '../..');
const readJsonl = <T>(rel: string): T[] =>
  readFileSync(path.join(ROOT, rel), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as T);

const mathTrain = readJsonl<MathProblem>('data/math_train.jsonl');
const mathEval = readJsonl<MathProblem>('evals/math.jsonl');
const chatTrain = readJsonl<ChatPrompt>('data/chat_train.jsonl');
const chatEval = readJsonl<ChatPrompt>('evals/chat.jsonl');

const wordRe = (ws: readonly string[]) => new RegExp(`\\b(${[...ws].sort((a, b) => b.length - a.length).join('|')})\\b`, 'g');
/** Question text with its numbers, names and items blanked: what a "template" is. */
const mathTemplate = (q: string) => q.replace(/\d+/g, '#').replace(wordRe(NAMES), 'N').replace(wordRe(ITEMS), 'I');
const lexWords = new Set<string>(WORDS);
const wordsIn = (s: string) => (s.toLowerCase().match(/[a-z]+/g) ?? []).filter((w) => lexWords.has(w));
/** Chat prompt with its lexicon words and numbers blanked. */
const chatTemplate = (p: string) => p.replace(/\d+/g, '#').replace(wordRe(WORDS), 'W');

describe('committed task files', () => {
  it('are exactly what the generators produce from the recorded seeds', () => {
    expect(readFileSync(path.join(ROOT, 'data/math_train.jsonl'), 'utf8')).toBe(toJsonl(mathProblems('train', TASK_DATA.mathTrain, TASK_DATA.seed)));
    expect(readFileSync(path.join(ROOT, 'evals/math.jsonl'), 'utf8')).toBe(toJsonl(mathProblems('eval', TASK_DATA.mathEval, TASK_DATA.evalSeed)));
    expect(readFileSync(path.join(ROOT, 'data/chat_train.jsonl'), 'utf8')).toBe(toJsonl(chatPrompts('train', TASK_DATA.chatTrain, TASK_DATA.seed)));
    expect(readFileSync(path.join(ROOT, 'evals/chat.jsonl'), 'utf8')).toBe(toJsonl(chatPrompts('eval', TASK_DATA.chatEval, TASK_DATA.evalSeed)));
  });
  it('hold at least 300 eval items per task', () => {
    expect(mathEval.length).toBeGreaterThanOrEqual(300);
    expect(chatEval.length).toBeGreaterThanOrEqual(300);
  });
});

describe('math train and eval are disjoint', () => {
  it('no eval question occurs in train', () => {
    const train = new Set(mathTrain.map((p) => p.question));
    expect(mathEval.filter((p) => train.has(p.question))).toEqual([]);
  });
  it('no eval template occurs in train', () => {
    const train = new Set(mathTrain.map((p) => mathTemplate(p.question)));
    const shared = mathEval.map((p) => mathTemplate(p.question)).filter((t) => train.has(t));
    expect(shared).toEqual([]);
    // and no single sentence pattern is shared either
    const sentences = (q: string) => mathTemplate(q).split(/(?<=[.?]) /);
    const trainSentences = new Set(mathTrain.flatMap((p) => sentences(p.question)));
    expect(mathEval.flatMap((p) => sentences(p.question)).filter((s) => trainSentences.has(s))).toEqual([]);
  });
  it('no eval number tuple occurs in train', () => {
    const train = new Set(mathTrain.map((p) => tupleKey(parseSteps(p.answer))));
    expect(mathEval.map((p) => tupleKey(parseSteps(p.answer))).filter((k) => train.has(k))).toEqual([]);
  });
});

describe('math problems', () => {
  const all = [...mathTrain.slice(0, 3000), ...mathEval];
  it('are GSM8K-shaped with a correct final answer', () => {
    for (const p of all) {
      expect(p.answer).toMatch(/\n#### \d+$/);
      expect(Number(p.answer.split('#### ')[1])).toBe(p.target);
      expect(p.question).toMatch(/\?$/);
    }
  });
  it('need 1 to 3 steps, each a fact inside the lexicon ranges, chained correctly', () => {
    const counts = new Set<number>();
    for (const p of all) {
      const steps = parseSteps(p.answer);
      counts.add(steps.length);
      expect(steps.length).toBeGreaterThanOrEqual(1);
      expect(steps.length).toBeLessThanOrEqual(3);
      expect(steps.length).toBe(p.answer.split('\n').length - 1);
      steps.forEach((s, i) => {
        if (i > 0) expect(s.left).toBe(steps[i - 1].result);
        if (s.op === 'add') {
          expect(s.left).toBeLessThanOrEqual(ADD_MAX);
          expect(s.right).toBeLessThanOrEqual(ADD_MAX);
          expect(s.result).toBe(s.left + s.right);
        } else if (s.op === 'sub') {
          expect(s.left).toBeLessThanOrEqual(SUB_MAX);
          expect(s.right).toBeLessThanOrEqual(s.left);
          expect(s.result).toBe(s.left - s.right);
        } else {
          expect(i).toBe(0);
          for (const x of [s.left, s.right]) expect(x >= 2 && x <= MUL_MAX).toBe(true);
          expect(s.result).toBe(s.left * s.right);
        }
        // every operand the solver needs is stated in the question
        if (i === 0) expect(p.question).toMatch(new RegExp(`\\b${s.left}\\b`));
        expect(p.question).toMatch(new RegExp(`\\b${s.right}\\b`));
      });
      expect(steps[steps.length - 1].result).toBe(p.target);
    }
    expect([...counts].sort()).toEqual([1, 2, 3]);
  });
  it('are deterministic in the seed and differ across seeds', () => {
    expect(mathProblems('eval', 20, 7)).toEqual(mathProblems('eval', 20, 7));
    expect(mathProblems('eval', 20, 7)).not.toEqual(mathProblems('eval', 20, 8));
  });
});

describe('chat train and eval are disjoint', () => {
  it('no eval prompt occurs in train', () => {
    const train = new Set(chatTrain.map((p) => p.prompt));
    expect(chatEval.filter((p) => train.has(p.prompt))).toEqual([]);
  });
  it('no eval sentence template occurs in train', () => {
    const sentences = (p: string) => chatTemplate(p).split(/(?<=\.) /);
    const train = new Set(chatTrain.flatMap((p) => sentences(p.prompt)));
    expect(chatEval.flatMap((p) => sentences(p.prompt)).filter((s) => train.has(s))).toEqual([]);
  });
  it('no eval item is a train item in other words (same request, word, count and instructions)', () => {
    // What a prompt asks for, whatever the phrasing: its instructions with their arguments and the
    // lexicon words and numbers it names, in order. No phrasing carries a lexicon word of its own.
    for (const split of ['train', 'eval'] as const) for (const ph of chatPhrasings(split)) expect(wordsIn(ph.replace(/\{\w\}/g, ''))).toEqual([]);
    const content = (p: ChatPrompt) => JSON.stringify([p.instruction_id_list, p.kwargs, wordsIn(p.prompt), p.prompt.match(/\d+/g) ?? []]);
    const train = new Set(chatTrain.map(content));
    expect(chatEval.filter((p) => train.has(content(p))).map((p) => p.prompt)).toEqual([]);
  });
  it('eval prompts use the same vocabulary as train (words are shared, as numbers are in math)', () => {
    const trainWords = new Set(chatTrain.flatMap((p) => wordsIn(p.prompt)));
    expect(chatEval.flatMap((p) => wordsIn(p.prompt)).filter((w) => !trainWords.has(w))).toEqual([]);
  });
});

describe('chat prompts', () => {
  const all = [...chatTrain.slice(0, 3000), ...chatEval];
  it('carry 1-2 instructions with aligned kwargs and a short reference that passes them', () => {
    for (const p of all) {
      expect(p.instruction_id_list.length).toBeGreaterThanOrEqual(1);
      expect(p.instruction_id_list.length).toBeLessThanOrEqual(2);
      expect(p.kwargs.length).toBe(p.instruction_id_list.length);
      expect(p.response.length).toBeLessThanOrEqual(40);
      expect(checkAll(p.response, p.instruction_id_list, p.kwargs)).toEqual(p.instruction_id_list.map(() => true));
    }
  });
  it('cover every instruction id of the contract in both splits', () => {
    const ids = [
      'change_case:english_capital', 'change_case:english_lowercase', 'startend:quotation', 'mergelab:brackets',
      'startend:end_checker', 'keywords:existence', 'length_constraints:number_words', 'mergelab:repeat_word', 'mergelab:reverse_word',
    ];
    for (const set of [chatTrain, chatEval]) expect(new Set(set.flatMap((p) => p.instruction_id_list))).toEqual(new Set(ids));
  });
  it('have distinct keys, eval keys apart from train keys', () => {
    const train = new Set(chatTrain.map((p) => p.key));
    expect(train.size).toBe(chatTrain.length);
    expect(chatEval.filter((p) => train.has(p.key))).toEqual([]);
  });
});
