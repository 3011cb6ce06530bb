import { describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { combineGrads, microGrads, splitBatch, type MicroBatch, type RopeCache } from '../../src/zoo/microGrads.js';
import { initBackend, initWeights, tensorShapes, tf } from '../../src/zoo/model.js';
import { makeBatch, trainPhase, TINY_PLAN, type ZooPlan } from '../../src/zoo/train.js';
import { readZooArrays } from '../../src/zoo/io.js';

const quiet = () => {};

function rows(B: number, T: number, mask: (b: number, j: number) => number): MicroBatch {
  const ids = new Int32Array(B * T).map((_, i) => 3 + (i % 50));
  const targets = new Int32Array(B * T).map((_, i) => 3 + ((i * 7) % 50));
  const lossMask = new Float32Array(B * T).map((_, i) => mask(Math.floor(i / T), i % T));
  return { ids, targets, lossMask, B, T };
}

describe('micro-batched gradients', () => {
  it('splits rows into consecutive groups, the first ones a row larger, and refuses more groups than rows', () => {
    const b = rows(7, 4, () => 1);
    const parts = splitBatch(b, 3);
    expect(parts.map((p) => p.B)).toEqual([3, 2, 2]);
    expect([...parts[1].ids]).toEqual([...b.ids.slice(12, 20)]);
    expect(parts.flatMap((p) => [...p.lossMask]).length).toBe(28);
    expect(() => splitBatch(b, 8)).toThrow(/7 rows into 8/);
    expect(() => splitBatch(b, 0)).toThrow();
  });

  it('averages group gradients by loss tokens, so the result is the whole batch mean-loss gradient', async () => {
    await initBackend();
    const cfg = TINY_PLAN.model;
    const init = initWeights(cfg, 3);
    const shapes = tensorShapes(cfg);
    const names = shapes.map(([n]) => n);
    const vars = shapes.map(([n, s]) => tf.variable(tf.tensor(init.get(n)!.data, s), true));
    // Unequal loss tokens per group: a plain mean of the two group gradients would be wrong.
    const batch = rows(4, 8, (b, j) => (b < 2 ? 1 : j < 2 ? 1 : 0));
    const cache: RopeCache = new Map();
    const whole = microGrads(cfg, names, vars, batch, cache);
    const parts = splitBatch(batch, 2).map((mb) => microGrads(cfg, names, vars, mb, cache));
    expect(parts.map((p) => p.tokens)).toEqual([16, 4]);
    const comb = combineGrads(parts);
    expect(comb.loss).toBeCloseTo(whole.loss, 5);
    const naive = parts[0].grads.map((g, i) => g.map((x, j) => (x + parts[1].grads[i][j]) / 2));
    let errComb = 0;
    let errNaive = 0;
    let scale = 0;
    comb.grads.forEach((g, i) => g.forEach((x, j) => {
      errComb = Math.max(errComb, Math.abs(x - whole.grads[i][j]));
      errNaive = Math.max(errNaive, Math.abs(naive[i][j] - whole.grads[i][j]));
      scale = Math.max(scale, Math.abs(whole.grads[i][j]));
    }));
    expect(errComb).toBeLessThan(1e-5 * scale + 1e-7);
    expect(errNaive).toBeGreaterThan(100 * errComb);
    vars.forEach((v) => v.dispose());
  });

  it('a group with no loss tokens weighs nothing', () => {
    const g = (x: number, tokens: number) => ({ loss: x, tokens, grads: [new Float32Array([x, -x])] });
    const c = combineGrads([g(2, 10), g(9, 0)]);
    expect([...c.grads[0]]).toEqual([2, -2]);
    expect(c.loss).toBe(2);
  });

  it('trains the same weights with the groups in a helper process as all in this one', async () => {
    const plan: ZooPlan = { ...TINY_PLAN, name: 'tiny-mb', base: { ...TINY_PLAN.base, microBatches: 2 } };
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'zoo-mb-'));
    await trainPhase(plan, 'base', { out: path.join(dir, 'here'), resume: false, log: quiet, gradHelpers: false });
    await trainPhase(plan, 'base', { out: path.join(dir, 'helper'), resume: false, log: quiet, gradHelpers: true });
    await trainPhase(TINY_PLAN, 'base', { out: path.join(dir, 'plain'), resume: false, log: quiet });
    const [a, b, c] = await Promise.all(['here', 'helper', 'plain'].map((d) => readZooArrays(path.join(dir, d, 'base'))));
    let differ = 0;
    let differPlain = 0;
    for (const [n, x] of a.arrays) {
      const y = b.arrays.get(n)!;
      const z = c.arrays.get(n)!;
      for (let i = 0; i < x.length; i++) {
        if (x[i] !== y[i]) differ++;
        if (x[i] !== z[i]) differPlain++;
      }
    }
    expect(differ).toBe(0);
    // The split is part of the recipe: an unsplit batch rounds differently.
    expect(differPlain).toBeGreaterThan(0);
    expect(makeBatch(plan, 'base', 0, []).B).toBe(TINY_PLAN.base.stages[0].batch);
  }, 60_000);
});
