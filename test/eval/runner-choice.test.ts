/**
 * Which built-in runner scores a model: the fast runner where its kernels take the model's shapes,
 * the tfjs reference otherwise (by default), and an explicit --runner fast is never overridden.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluateModel, type EvalOptions } from '../../src/eval/evaluate.js';
import { FAST_BACKEND_NAME } from '../../src/eval/backends/fast.js';
import { fromHfConfig, saveZooModel } from '../../src/zoo/io.js';
import { initWeights } from '../../src/zoo/model.js';
import { tempDir, tinyZoo } from '../sweep/helpers.js';

let zoo: string;
let odd: string;

beforeAll(async () => {
  zoo = await tinyZoo();
  // Head dimension 12: the fast kernels work on 8 lanes and refuse it.
  const hf = JSON.parse(await fs.readFile(path.join(zoo, 'base', 'config.json'), 'utf8')) as Record<string, unknown>;
  const cfg = fromHfConfig({ ...hf, hidden_size: 24, intermediate_size: 40, head_dim: 12 }, 'odd');
  odd = path.join(await tempDir('runner-choice'), 'odd');
  await saveZooModel(odd, cfg, new Map([...initWeights(cfg, 7)].map(([n, t]) => [n, t.data])));
}, 300_000);

describe('the built-in runner', () => {
  it('is the fast one where it can take the model, the reference where it cannot, with the same scores', async () => {
    const opts: EvalOptions = { suites: ['lm'], limit: 3, samples: 0, threads: 1 };
    const fastOnZoo = await evaluateModel(path.join(zoo, 'base'), opts);
    expect(fastOnZoo.backend).toBe(FAST_BACKEND_NAME);
    const byDefault = await evaluateModel(odd, opts);
    expect(byDefault.backend).toBe('zoo/tfjs-wasm');
    const reference = await evaluateModel(odd, { ...opts, runner: 'tfjs' });
    expect(byDefault.metrics).toEqual(reference.metrics);
  }, 300_000);

  it('asked for by name, the fast runner says why it cannot run the model', async () => {
    await expect(evaluateModel(odd, { suites: ['lm'], limit: 3, runner: 'fast', threads: 1 })).rejects.toThrow(/odd\/config\.json: the fast runner cannot run this model \(head dimension 12 is not a multiple of 8\); use --runner tfjs/);
  }, 300_000);
});
