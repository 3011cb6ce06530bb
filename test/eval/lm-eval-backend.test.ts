/**
 * The lm-eval backend on lm-eval's own output files (test/fixtures/lm-eval/README.md), written by
 * a stand-in `lm_eval` on PATH that receives the real command line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evaluateWithBackend, type BackendEvalConfig } from '../../src/eval/backends/run.js';
import { EvalBackendSchema, backendKey } from '../../src/eval/backends/config.js';
import { metricName, taskOutcomes } from '../../src/eval/backends/lm-eval-output.js';

const REPO = path.resolve(__dirname, '../..');
let dir: string;
let bin: string;
const oldPath = process.env.PATH;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mergelab-lm-eval-'));
  bin = path.join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'lm_eval'), `#!/bin/sh\nexec node ${path.join(REPO, 'test/fixtures/lm-eval/lm_eval.mjs')} "$@"\n`);
  chmodSync(path.join(bin, 'lm_eval'), 0o755);
});

afterAll(() => {
  process.env.PATH = oldPath;
  rmSync(dir, { recursive: true, force: true });
});

const cfg = (backend: Record<string, unknown>, limit: number | null = 4): BackendEvalConfig => ({ suites: ['math', 'chat'], limit, batchSize: 8, samples: 2, backend: EvalBackendSchema.parse({ type: 'lm-eval', ...backend }) });

describe('lm-eval backend', () => {
  it('maps lm-eval metric keys to ours, stderr kept', () => {
    expect(metricName('exact_match,strict-match')).toBe('exact_match_strict');
    expect(metricName('exact_match_stderr,flexible-extract')).toBe('exact_match_flexible_stderr');
    expect(metricName('prompt_level_strict_acc,none')).toBe('prompt_level_strict');
    expect(metricName('inst_level_loose_acc_stderr,none')).toBe('inst_level_loose_stderr');
    expect(metricName('acc_norm,none')).toBe('acc_norm');
    expect(metricName('alias')).toBeNull();
  });

  it('runs lm_eval with its command line and reads results and samples', async () => {
    const record = path.join(dir, 'argv.jsonl');
    const c = cfg({ env: { PATH: `${bin}:${oldPath}`, FAKE_LM_EVAL_RECORD: record } });
    const out = await evaluateWithBackend('/models/merged-7b/point-0003', c, { gpus: [2, 3] });
    const call = JSON.parse(readFileSync(record, 'utf8').trim()) as { argv: string[]; cuda: string };
    expect(call.cuda).toBe('2,3');
    expect(call.argv.slice(0, 6)).toEqual(['--model', 'hf', '--model_args', 'pretrained=/models/merged-7b/point-0003,dtype=bfloat16', '--tasks', 'gsm8k,ifeval']);
    expect(call.argv).toContain('--log_samples');
    expect(call.argv.slice(-2)).toEqual(['--limit', '4']);
    expect(out.metrics.math).toEqual({ n: 4, exact_match_strict: 0.25, exact_match_strict_stderr: 0.25, exact_match_flexible: 0.75, exact_match_flexible_stderr: 0.25 });
    expect(out.metrics.chat.n).toBe(3);
    expect(out.metrics.chat.prompt_level_strict).toBeCloseTo(2 / 3);
    expect(out.metrics.chat.prompt_level_strict_stderr).toBeCloseTo(1 / 3);
    expect(out.metrics.chat.inst_level_strict).toBe(0.75);
    // lm-eval reports no stderr for instruction-level accuracy ("N/A"): none is invented.
    expect(out.metrics.chat.inst_level_strict_stderr).toBeUndefined();
    expect(out.samples.map((s) => [s.suite, s.id, s.correct])).toEqual([['math', '0', true], ['math', '1', false], ['chat', '0', true], ['chat', '1', false]]);
    expect(out.samples[0].prompt).toBe('Question: Tom has 5 apples and buys 7 more. How many apples does Tom have?\nAnswer:');
    expect(out.samples[0].output).toBe(' Tom has 5 + 7 = 12 apples.\n#### 12');
    expect(out.provenance).toMatchObject({ backend: 'lm-eval', lmEvalVersion: '0.4.13.dev0', key: backendKey(c.backend) });
    expect(out.provenance.command).toMatch(/^lm_eval --model hf .* --limit 4$/);
  });

  it('declares metrics from higher_is_better and reads per-document outcomes from the samples, keyed by doc_id', async () => {
    const c = cfg({ env: { PATH: `${bin}:${oldPath}` } });
    const out = await evaluateWithBackend('/models/merged-7b/point-0003', c);
    expect(out.metricSpecs.math).toEqual({
      n: { role: 'count', unit: 'items' },
      exact_match_strict: { role: 'skill', higherIsBetter: true, aggregation: 'proportion', unit: 'share of documents' },
      exact_match_strict_stderr: { role: 'count', unit: 'standard error (lm-eval)' },
      exact_match_flexible: { role: 'skill', higherIsBetter: true, aggregation: 'proportion', unit: 'share of documents' },
      exact_match_flexible_stderr: { role: 'count', unit: 'standard error (lm-eval)' },
    });
    expect(out.metricSpecs.chat.inst_level_strict).toEqual({ role: 'skill', higherIsBetter: true, aggregation: 'ratio', unit: 'share of instructions' });
    expect(out.metricSpecs.chat.prompt_level_loose).toMatchObject({ aggregation: 'proportion' });
    // gsm8k: one line per document and filter; each filter's exact_match per document.
    expect(out.items.math.ids).toEqual(['0', '1', '2', '3']);
    expect(out.items.math.values.exact_match_strict).toEqual([1, 0, 0, 0]);
    expect(out.items.math.values.exact_match_flexible).toEqual([1, 1, 0, 1]);
    expect(out.items.math.weights).toEqual({});
    // IFEval: instruction-level verdicts are lists: instructions followed over instructions.
    expect(out.items.chat.ids).toEqual(['0', '1', '2']);
    expect(out.items.chat.values.prompt_level_strict).toEqual([1, 0, 1]);
    const v = out.items.chat.values.inst_level_strict;
    const w = out.items.chat.weights.inst_level_strict;
    expect(w).toEqual([1, 2, 1]);
    expect(v.reduce((a, b) => a + b, 0) / w.reduce((a, b) => a + b, 0)).toBe(out.metrics.chat.inst_level_strict);
  });

  it('keeps only outcomes that add up to the reported score, and reads perplexity pairs', () => {
    const line = (doc: number, fields: Record<string, unknown>, metrics: string[]) => JSON.stringify({ doc_id: doc, arguments: { gen_args_0: { arg_0: 'p' } }, resps: [['x']], filtered_resps: ['x'], filter: 'none', metrics, ...fields });
    const text = [line(0, { acc: 1, word_perplexity: [-20, 10], f1: ['a', 'b'] }, ['acc', 'word_perplexity', 'f1']), line(1, { acc: 0, word_perplexity: [-10, 10], f1: ['c', 'd'] }, ['acc', 'word_perplexity', 'f1'])].join('\n');
    const o = taskOutcomes(text, { acc: 0.5, word_perplexity: Math.exp(30 / 20), f1: 0.7 }, 'samples.jsonl');
    expect(o.items.values).toEqual({ acc: [1, 0], word_perplexity: [20, 10] });
    expect(o.items.weights).toEqual({ word_perplexity: [10, 10] });
    expect(o.aggregation).toEqual({ acc: 'proportion', word_perplexity: 'exp_ratio' });
    // Samples of another run (the score differs): no outcomes rather than wrong ones.
    expect(taskOutcomes(text, { acc: 0.25 }, 'samples.jsonl').items.values).toEqual({});
  });

  it('apply_chat_template and a custom task map reach the command line', async () => {
    const record = path.join(dir, 'argv2.jsonl');
    await evaluateWithBackend('/m', { ...cfg({ apply_chat_template: true, tasks: { math: 'gsm8k', chat: 'ifeval' }, env: { PATH: `${bin}:${oldPath}`, FAKE_LM_EVAL_RECORD: record } }, null) });
    const call = JSON.parse(readFileSync(record, 'utf8').trim()) as { argv: string[] };
    expect(call.argv.at(-1)).toBe('--apply_chat_template');
    expect(call.argv).not.toContain('--limit');
    expect(backendKey(cfg({ apply_chat_template: true }).backend)).not.toBe(backendKey(cfg({}).backend));
  });

  it('an lm_eval that exits non-zero fails with a one-line reason from its log', async () => {
    const e = await evaluateWithBackend('/m', cfg({ env: { PATH: `${bin}:${oldPath}`, FAKE_LM_EVAL_EXIT: '1' } })).then(() => new Error('no error'), (x: unknown) => x as Error);
    expect(e.message).toMatch(/^lm_eval exited with code 1: .*CUDA out of memory/);
    expect(e.message).not.toContain('\n');
  });

  it('a missing lm_eval says how to install it', async () => {
    const e = await evaluateWithBackend('/m', cfg({ env: { PATH: '/nonexistent' } })).then(() => new Error('no error'), (x: unknown) => x as Error);
    expect(e.message).toMatch(/lm_eval: command not found\. Install lm-evaluation-harness \(pip install "lm_eval\[hf,ifeval\]"/);
  });

  it('a suite with no lm-eval task is refused before anything runs', async () => {
    await expect(evaluateWithBackend('/m', { ...cfg({}), suites: ['lm'] })).rejects.toThrow(/eval.backend.tasks: suite lm has no lm-eval task/);
  });
});
