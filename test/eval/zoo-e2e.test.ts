import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { initWeights } from '../../src/zoo/model.js';
import { loadZooModel, saveZooModel } from '../../src/zoo/io.js';
import { generateGreedy, scoreText } from '../../src/zoo/generate.js';
import { TINY_PLAN } from '../../src/zoo/train.js';
import { evaluateModel, type EvalResult } from '../../src/eval/evaluate.js';
import { renderTemplate } from '../../src/eval/template.js';

const REPO = path.resolve(__dirname, '../..');
let dir: string;
let modelDir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'eval-zoo-'));
  modelDir = path.join(dir, 'tiny');
  const w = initWeights(TINY_PLAN.model, 7);
  await saveZooModel(modelDir, TINY_PLAN.model, new Map([...w].map(([k, v]) => [k, v.data])));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('built-in evaluation of a zoo model', () => {
  let res: EvalResult;
  it('runs all three suites and reports every metric', async () => {
    res = await evaluateModel(modelDir, { suites: ['math', 'chat', 'lm'], limit: 6, batchSize: 4, samples: 6 });
    expect(res.backend).toBe('zoo/fast-wasm');
    expect(Object.keys(res.metrics.math).sort()).toEqual(['degenerate_rate', 'exact_match_flexible', 'exact_match_strict', 'n']);
    expect(Object.keys(res.metrics.chat).sort()).toEqual(['degenerate_rate', 'inst_level_loose', 'inst_level_strict', 'n', 'prompt_level_loose', 'prompt_level_strict']);
    expect(Object.keys(res.metrics.lm).sort()).toEqual(['bits_per_char', 'n', 'nll_per_token', 'perplexity', 'tokens']);
    for (const suite of ['math', 'chat']) for (const [m, v] of Object.entries(res.metrics[suite])) if (m !== 'n') expect(v >= 0 && v <= 1).toBe(true);
    // an untrained model: near-uniform over the ~100-symbol vocabulary, and no skill
    expect(res.metrics.lm.perplexity).toBeGreaterThan(20);
    expect(res.metrics.lm.perplexity).toBeLessThan(1000);
    expect(res.metrics.math.exact_match_strict).toBe(0);
    expect(res.timings.total).toBeGreaterThan(0);
  });

  it('scores exactly what the zoo runtime generates and scores', async () => {
    const model = await loadZooModel(modelDir);
    try {
      const math = readFileSync(path.join(REPO, 'evals/math.jsonl'), 'utf8').split('\n').slice(0, 6).map((l) => JSON.parse(l) as Record<string, unknown>);
      const prompts = math.map((r) => renderTemplate('Question: {{question}}\nAnswer:', r));
      const outs = await generateGreedy(model, prompts, { maxNewTokens: 100, batchSize: 4 });
      const cut = outs.map((o) => { const i = [o.indexOf('\n\n'), o.indexOf('Question:')].filter((x) => x >= 0); return i.length ? o.slice(0, Math.min(...i)) : o; });
      expect(res.samples.filter((s) => s.suite === 'math').map((s) => s.output)).toEqual(cut);
      const lm = readFileSync(path.join(REPO, 'evals/lm.jsonl'), 'utf8').split('\n').slice(0, 6).map((l) => (JSON.parse(l) as { text: string }).text);
      const scores = await scoreText(model, lm);
      const nll = scores.reduce((s, x) => s + x.nll, 0);
      const tokens = scores.reduce((s, x) => s + x.tokens, 0);
      expect(res.metrics.lm.tokens).toBe(tokens);
      expect(res.metrics.lm.nll_per_token).toBeCloseTo(nll / tokens, 4);
    } finally {
      model.dispose();
    }
  });

  it('the CLI prints a table, JSON, and writes --out', async () => {
    const out = path.join(dir, 'res.json');
    const cli = path.join(REPO, 'src/cli/main.ts');
    const r = await execa('npx', ['tsx', cli, 'eval', modelDir, '--suite', 'chat', '--limit', '3', '--out', out], { cwd: REPO });
    expect(r.stdout).toMatch(/chat\s+prompt_level_strict\s+\d/);
    const saved = JSON.parse(readFileSync(out, 'utf8')) as EvalResult;
    expect(saved.metrics.chat.n).toBe(3);
    const j = await execa('npx', ['tsx', cli, 'eval', modelDir, '--suite', 'nope', '--json'], { cwd: REPO, reject: false });
    expect(j.exitCode).toBe(1); // a problem with the input (README, exit codes)
    expect(j.stderr).toMatch(/eval suite "nope": no task description/);
  });
});
