import { describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { trainPhase, makeBatch, taskExamples, mathExample, TINY_PLAN, type ZooPlan } from '../../src/zoo/train.js';
import { loadZooModel } from '../../src/zoo/io.js';
import { scoreText } from '../../src/zoo/generate.js';
import { initBackend, lossFn, trainingView, initWeights, ropeTensors, causalMask, tf, type Weights } from '../../src/zoo/model.js';
import { mathProblems } from '../../src/data/math.js';

const quiet = () => {};

function anchoredPlan(rows: number): ZooPlan {
  // A fine-tune long and fast enough for the task vector to show in the other task's text.
  const chat = { ...TINY_PLAN.chat, stages: [{ steps: 40, batch: 6, seqLen: 0 }], lr: 3e-3, taskFrac: 0.5, baseAnchorRows: rows };
  return { ...TINY_PLAN, chat };
}

describe('base-anchored rows in a fine-tune', () => {
  it('puts the other task’s examples last, whole, with soft rows counted; the task rows are those of the unanchored plan', () => {
    const plan = anchoredPlan(2);
    const examples = taskExamples('chat', plan.chat.taskExamples, plan.seed);
    const anchors = taskExamples('math', plan.chat.taskExamples, plan.seed);
    const plain = makeBatch(anchoredPlan(0), 'chat', 5, examples, anchors);
    const b = makeBatch(plan, 'chat', 5, examples, anchors);
    expect(plain.softRows).toBe(0);
    expect(b.softRows).toBe(2);
    expect(b.B).toBe(6);
    const row = (x: typeof b, i: number, field: 'ids' | 'lossMask') => Array.from(x[field].slice(i * x.T, (i + 1) * x.T));
    for (let i = 0; i < 3; i++) {
      // Task rows: same tokens (the anchors may lengthen T; compare the unpadded prefix).
      const n = Math.min(plain.T, b.T);
      expect(row(b, i, 'ids').slice(0, n)).toEqual(row(plain, i, 'ids').slice(0, n));
    }
    const anchorTexts = new Set(anchors.map((e) => [...e.prompt, ...e.target].join(',')));
    for (let i = 4; i < 6; i++) {
      const ids = row(b, i, 'ids');
      const mask = row(b, i, 'lossMask');
      const len = mask.lastIndexOf(1) + 2; // tokens in the row: the last masked position predicts the last token
      expect(mask.slice(0, len - 1).every((m) => m === 1)).toBe(true);
      const toks = [...ids.slice(0, len - 1), b.targets[i * b.T + len - 2]];
      expect(anchorTexts.has(toks.join(','))).toBe(true);
    }
  });

  it('with soft targets equal to the one-hot targets, the loss is the plain cross-entropy', async () => {
    await initBackend();
    const cfg = TINY_PLAN.model;
    const w = new Map([...initWeights(cfg, 3)].map(([n, { shape, data }]) => [n, tf.tensor(data, shape)]));
    const [B, T] = [3, 8];
    const ids = tf.tensor2d(Array.from({ length: B * T }, (_, i) => 6 + ((i * 7) % 90)), [B, T], 'int32');
    const targets = tf.tensor2d(Array.from({ length: B * T }, (_, i) => 6 + ((i * 5) % 90)), [B, T], 'int32');
    const mask = tf.ones([B * T]);
    const rope = ropeTensors(cfg, T);
    const view = trainingView(w as unknown as Weights);
    const plain = lossFn(cfg, view, ids, targets, mask, rope, causalMask(T)).dataSync()[0];
    const lastRow = tf.oneHot(tf.slice(tf.reshape(targets, [-1]), [(B - 1) * T], [T]), cfg.vocabSize);
    const soft = lossFn(cfg, view, ids, targets, mask, rope, causalMask(T), lastRow).dataSync()[0];
    expect(soft).toBeCloseTo(plain, 5);
    const uniform = tf.fill([T, cfg.vocabSize], 1 / cfg.vocabSize);
    expect(lossFn(cfg, view, ids, targets, mask, rope, causalMask(T), uniform).dataSync()[0]).not.toBeCloseTo(plain, 3);
  });

  it('keeps the fine-tune closer to the base on the other task’s text than an unanchored fine-tune', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'zoo-anchor-'));
    await trainPhase(TINY_PLAN, 'base', { out: root, resume: false, log: quiet });
    const other = path.join(root, 'plain');
    await fs.mkdir(other);
    await fs.symlink(path.join(root, 'base'), path.join(other, 'base'));
    await trainPhase(anchoredPlan(2), 'chat', { out: root, resume: false, log: quiet });
    await trainPhase(anchoredPlan(0), 'chat', { out: other, resume: false, log: quiet });
    const texts = mathProblems('train', 40, 9).map((p) => {
      const e = mathExample(p.question, p.answer);
      return e.prompt + e.target;
    });
    const nll = async (dir: string) => {
      const m = await loadZooModel(dir);
      const r = await scoreText(m, texts);
      m.dispose();
      return r.reduce((s, x) => s + x.nll, 0) / r.reduce((s, x) => s + x.tokens, 0);
    };
    const base = await nll(path.join(root, 'base'));
    const anchored = await nll(path.join(root, 'chat'));
    const plain = await nll(path.join(other, 'chat'));
    expect(Math.abs(anchored - base)).toBeLessThan(Math.abs(plain - base));
  });
});
