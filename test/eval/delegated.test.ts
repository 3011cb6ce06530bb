import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { evaluateModel, flattenMetrics, type EvalResult } from '../../src/eval/evaluate.js';

const REPO = path.resolve(__dirname, '../..');
const FAKE = path.resolve(__dirname, 'fixtures/fake-delegate.mjs');

const math = [
  { id: 'm1', question: 'Tom has 5 apples. Tom gets 7 more. How many apples does Tom have?', answer: 'Tom has 5 + 7 = 12 apples.\n#### 12', target: 12 },
  { id: 'm2', question: 'Ann has 9 cups. Ann gives 4 away. How many cups does Ann have?', answer: 'Ann has 9 - 4 = 5 cups.\n#### 5', target: 5 },
  { id: 'm3', question: 'Bob has 3 bags with 4 pens in each bag. How many pens does Bob have?', answer: 'Bob has 3 * 4 = 12 pens.\n#### 12', target: 12 },
  { id: 'm4', question: 'Sam has 2 eggs. Sam gets 2 more. How many eggs does Sam have?', answer: 'Sam has 2 + 2 = 4 eggs.\n#### 4', target: 4 },
];
const chat = [
  { key: 1, prompt: 'Spell cat backwards. Answer in capital letters.', instruction_id_list: ['mergelab:reverse_word', 'change_case:english_capital'], kwargs: [{ word: 'cat' }, {}], response: 'TAC' },
  { key: 2, prompt: 'Say the word dog. Wrap your answer in square brackets.', instruction_id_list: ['mergelab:brackets'], kwargs: [{}], response: '[dog]' },
  { key: 3, prompt: 'Repeat the word sun 2 times.', instruction_id_list: ['mergelab:repeat_word'], kwargs: [{ word: 'sun', n: 2 }], response: 'sun sun' },
];
const lm = [{ id: 'l1', text: 'Tom had 5 apples.' }, { id: 'l2', text: '3 + 4 = 7.' }];

// Canned outputs keyed by the rendered prompt: strict hit, flexible-only hit, miss, degenerate.
const canned: Record<string, string> = {
  [`Question: ${math[0].question}\nAnswer:`]: ' Tom has 5 + 7 = 12 apples.\n#### 12',
  [`Question: ${math[1].question}\nAnswer:`]: ' Ann has 9 - 4 = 5 cups.',
  [`Question: ${math[2].question}\nAnswer:`]: ' Bob has 3 * 4 = 11 pens.\n#### 11',
  [`Question: ${math[3].question}\nAnswer:`]: '',
  [`<|user|>${chat[0].prompt}\n<|assistant|>`]: 'TAC',
  [`<|user|>${chat[1].prompt}\n<|assistant|>`]: 'Sure:\n[dog]',
  [`<|user|>${chat[2].prompt}\n<|assistant|>`]: 'sun',
};

let dir: string;
let server: Server;
let url: string;
const requests: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'eval-delegated-'));
  for (const s of ['math', 'chat', 'lm']) copyFileSync(path.join(REPO, 'evals', `${s}.yaml`), path.join(dir, `${s}.yaml`));
  const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  writeFileSync(path.join(dir, 'math.jsonl'), jsonl(math));
  writeFileSync(path.join(dir, 'chat.jsonl'), jsonl(chat));
  writeFileSync(path.join(dir, 'lm.jsonl'), jsonl(lm));
  writeFileSync(path.join(dir, 'canned.json'), JSON.stringify(canned));

  // A loopback OpenAI-style completions server answering from the same canned outputs.
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const q = JSON.parse(body) as { prompt: string[]; max_tokens: number; echo?: boolean };
      requests.push(q);
      const choices = q.prompt.map((p, index) =>
        q.echo
          ? { index, text: p, finish_reason: 'length', logprobs: { token_logprobs: [null, ...[...p].map(() => -0.5)] } }
          : { index, text: canned[p] ?? '???', finish_reason: 'stop' });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'x', object: 'text_completion', choices }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function expectScores(res: EvalResult, lmTokensPerText: (t: string) => number): void {
  const m = flattenMetrics(res.metrics);
  expect(m['math.n']).toBe(4);
  expect(m['math.exact_match_strict']).toBeCloseTo(1 / 4);
  expect(m['math.exact_match_flexible']).toBeCloseTo(2 / 4);
  expect(m['math.degenerate_rate']).toBeCloseTo(1 / 4);
  expect(m['chat.prompt_level_strict']).toBeCloseTo(1 / 3);
  expect(m['chat.prompt_level_loose']).toBeCloseTo(2 / 3);
  expect(m['chat.inst_level_strict']).toBeCloseTo(2 / 4);
  expect(m['chat.inst_level_loose']).toBeCloseTo(3 / 4);
  expect(m['chat.degenerate_rate']).toBe(0);
  const tokens = lm.reduce((s, r) => s + lmTokensPerText(r.text), 0);
  const chars = lm.reduce((s, r) => s + r.text.length, 0);
  expect(m['lm.tokens']).toBe(tokens);
  expect(m['lm.nll_per_token']).toBeCloseTo(0.5);
  expect(m['lm.perplexity']).toBeCloseTo(Math.exp(0.5));
  expect(m['lm.bits_per_char']).toBeCloseTo((0.5 * tokens) / Math.LN2 / chars);
  expect(res.samples.filter((s) => s.suite === 'math').map((s) => s.correct)).toEqual([true, false, false, false]);
  expect(res.samples.find((s) => s.id === '2')?.output).toBe('Sure:\n[dog]');
}

describe('delegated evaluation', () => {
  it('scores a command that prints JSONL outputs', async () => {
    const res = await evaluateModel(path.join(dir, 'canned.json'), {
      suites: ['math', 'chat', 'lm'],
      evalsDir: dir,
      delegateCmd: `node ${FAKE} {model} {task_file}`,
    });
    expect(res.backend).toBe(`delegate:node ${FAKE} {model} {task_file}`);
    expectScores(res, (t) => t.length);
  });

  it('scores an OpenAI-compatible completions endpoint', async () => {
    requests.length = 0;
    const res = await evaluateModel('fake-model', { suites: ['math', 'chat', 'lm'], evalsDir: dir, endpoint: url, batchSize: 2 });
    expect(res.backend).toBe(`http:${url}/v1/completions`);
    // the first token of an echoed prompt has no logprob
    expectScores(res, (t) => t.length);
    const gen = requests.filter((q) => !q.echo);
    expect(gen[0]).toMatchObject({ model: 'fake-model', temperature: 0, max_tokens: 100, stop: ['\n\n', 'Question:'] });
    expect(gen.every((q) => (q.prompt as string[]).length <= 2)).toBe(true);
    expect(requests.find((q) => q.echo)).toMatchObject({ max_tokens: 0, logprobs: 0 });
  });

  it('names the failing command and what it printed', async () => {
    await expect(evaluateModel(path.join(dir, 'missing.json'), { suites: ['math'], evalsDir: dir, delegateCmd: `node ${FAKE} {model} {task_file}` }))
      .rejects.toThrow(/--delegate-cmd .* failed \(exit 1\)/);
    await expect(evaluateModel('x', { suites: ['math'], evalsDir: dir, delegateCmd: 'node -e 1' })).rejects.toThrow(/must contain \{task_file\}/);
  });

  it('limit takes the first items', async () => {
    const res = await evaluateModel(path.join(dir, 'canned.json'), { suites: ['math'], evalsDir: dir, limit: 1, delegateCmd: `node ${FAKE} {model} {task_file}` });
    expect(res.metrics.math.n).toBe(1);
    expect(res.metrics.math.exact_match_strict).toBe(1);
    expect(readFileSync(path.join(dir, 'math.jsonl'), 'utf8')).toContain('m4');
  });
});
