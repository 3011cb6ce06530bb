/**
 * The zoo scored through `mergelab serve`, started per model by the openai backend (the real CLI
 * as a child process), gives the same scores and outputs as the built-in evaluator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evaluateWithBackend, type BackendEvalConfig } from '../../src/eval/backends/run.js';
import { EvalBackendSchema } from '../../src/eval/backends/config.js';
import { tinyZoo } from '../sweep/helpers.js';

const REPO = path.resolve(__dirname, '../..');
let dir: string;
let bin: string;
let tiny: string;

beforeAll(async () => {
  tiny = await tinyZoo();
  dir = mkdtempSync(path.join(os.tmpdir(), 'mergelab-serve-eq-'));
  bin = path.join(dir, 'bin');
  mkdirSync(bin);
  // `mergelab` as a user has it on PATH.
  writeFileSync(path.join(bin, 'mergelab'), `#!/bin/sh\nexec node --import tsx ${path.join(REPO, 'src/cli/main.ts')} "$@"\n`);
  chmodSync(path.join(bin, 'mergelab'), 0o755);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const suites = ['math', 'chat', 'lm'];
const builtin: BackendEvalConfig = { suites, limit: 5, batchSize: 8, samples: 6, backend: { type: 'builtin' } };
const served = (): BackendEvalConfig => ({
  ...builtin,
  backend: EvalBackendSchema.parse({ type: 'openai', serve: 'mergelab serve {model} --port {port} --quiet', ready_timeout: 120, concurrency: 8, env: { PATH: `${bin}:${process.env.PATH}` } }),
});

async function compare(modelDir: string, tag: string): Promise<void> {
  const pidDir = path.join(dir, `pids-${tag}`);
  const a = await evaluateWithBackend(modelDir, builtin);
  const b = await evaluateWithBackend(modelDir, served(), { pidDir, logFile: path.join(dir, `${tag}.log`) });
  for (const s of ['math', 'chat']) expect(b.metrics[s]).toEqual(a.metrics[s]);
  expect(b.metrics.lm.n).toBe(a.metrics.lm.n);
  expect(b.metrics.lm.tokens).toBe(a.metrics.lm.tokens);
  for (const m of ['nll_per_token', 'perplexity', 'bits_per_char']) expect(b.metrics.lm[m]).toBeCloseTo(a.metrics.lm[m], 4);
  expect(b.samples).toEqual(a.samples);
  expect(b.provenance.servedModel).toBe(modelDir);
  expect(readdirSync(pidDir)).toEqual([]);
}

describe('zoo through mergelab serve = built-in evaluator', () => {
  // Each case starts the real CLI (tsx, tfjs) and evaluates twice; generous for a loaded 2-core machine.
  it('tiny zoo chat model', async () => {
    await compare(path.join(tiny, 'chat'), 'tiny-chat');
  }, 300_000);

  it('committed zoo math model', async () => {
    await compare(path.join(REPO, 'data/zoo/math'), 'zoo-math');
  }, 300_000);

  it('committed zoo chat model', async () => {
    await compare(path.join(REPO, 'data/zoo/chat'), 'zoo-chat');
  }, 300_000);
});
