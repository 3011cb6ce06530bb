import { describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { trainPhase, trainZoo, lrAt, makeBatch, phaseHash, planTokenizer, COPY_PLAN, TINY_PLAN, type ZooPlan } from '../../src/zoo/train.js';
import { keptCorpusMix } from '../../src/data/pretrain.js';
import { BOS_ID, EOS_ID } from '../../src/zoo/tokenizer.js';
import { readZooArrays, loadZooModel } from '../../src/zoo/io.js';
import { zooDeltaStats } from '../../src/zoo/deltaStats.js';
import { generateGreedy } from '../../src/zoo/generate.js';

const quiet = () => {};

async function tmp(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'zoo-train-'));
}

async function same(a: string, b: string): Promise<boolean> {
  const [x, y] = [await readZooArrays(a), await readZooArrays(b)];
  for (const [n, arr] of x.arrays) {
    const other = y.arrays.get(n)!;
    for (let i = 0; i < arr.length; i++) if (arr[i] !== other[i]) return false;
  }
  return true;
}

describe('zoo training (tiny plan)', () => {
  it('builds base, math and chat folders that load and generate, with small fine-tune deltas', async () => {
    const out = await tmp();
    await trainZoo({ tiny: true, out, parallel: false, log: quiet });
    for (const m of ['base', 'math', 'chat']) {
      const model = await loadZooModel(path.join(out, m));
      const [g] = await generateGreedy(model, ['Question: 1 + 1\nAnswer:'], { maxNewTokens: 4 });
      expect(typeof g).toBe('string');
      model.dispose();
    }
    const stats = await zooDeltaStats(out);
    expect(stats.medianRatio.math).toBeGreaterThan(0);
    expect(stats.medianRatio.math).toBeLessThan(0.05);
    expect(Math.abs(stats.cosine)).toBeLessThanOrEqual(1);
    const info = JSON.parse(await fs.readFile(path.join(out, 'math', 'training_info.json'), 'utf8'));
    expect(info.steps).toBe(6);
  });

  it('gives the same weights for the same seed, and a resumed run equals an uninterrupted one', async () => {
    const a = await tmp();
    const b = await tmp();
    await trainPhase(TINY_PLAN, 'base', { out: a, resume: false, log: quiet });
    const stopped = await trainPhase(TINY_PLAN, 'base', { out: b, resume: false, log: quiet, stopAfter: 7 });
    expect(stopped.stopped).toBe(true);
    await expect(fs.stat(path.join(b, 'base'))).rejects.toThrow();
    await trainPhase(TINY_PLAN, 'base', { out: b, resume: true, log: quiet });
    expect(await same(path.join(a, 'base'), path.join(b, 'base'))).toBe(true);
    const other = { ...TINY_PLAN, seed: 2 };
    const c = await tmp();
    await trainPhase(other, 'base', { out: c, resume: false, log: quiet });
    expect(await same(path.join(a, 'base'), path.join(c, 'base'))).toBe(false);
  });

  it('restarts the learning-rate cycle at a restart stage, and resumes across it exactly', async () => {
    const plan: ZooPlan = {
      ...TINY_PLAN,
      base: { ...TINY_PLAN.base, stages: [{ steps: 8, batch: 2, seqLen: 16 }, { steps: 6, batch: 2, seqLen: 24, restart: { lr: 1e-3, warmup: 2 } }] },
    };
    const p = plan.base;
    expect(lrAt(p, 0)).toBeCloseTo(p.lr / p.warmup);
    expect(lrAt(p, 7)).toBeLessThan(lrAt(p, 5));
    expect(lrAt(p, 7)).toBeGreaterThan(p.lr * p.minLrFrac);
    expect(lrAt(p, 8)).toBeCloseTo(5e-4);
    expect(lrAt(p, 9)).toBeCloseTo(1e-3);
    expect(lrAt(p, 13)).toBeLessThan(1e-3);
    const a = await tmp();
    const b = await tmp();
    await trainPhase(plan, 'base', { out: a, resume: false, log: quiet });
    await trainPhase(plan, 'base', { out: b, resume: false, log: quiet, stopAfter: 8 });
    await trainPhase(plan, 'base', { out: b, resume: true, log: quiet });
    expect(await same(path.join(a, 'base'), path.join(b, 'base'))).toBe(true);
  });

  it('pulls a fine-tune toward the base with decayToBase, records it in the hash, and refuses it on the base', async () => {
    const out = await tmp();
    await trainPhase(TINY_PLAN, 'base', { out, resume: false, log: quiet });
    const chat = { ...TINY_PLAN.chat, lr: 1e-3, stages: [{ steps: 12, batch: 2, seqLen: 0 }] };
    const pulled: ZooPlan = { ...TINY_PLAN, chat: { ...chat, decayToBase: 100 } };
    const free: ZooPlan = { ...TINY_PLAN, chat };
    expect(phaseHash(pulled, 'chat')).not.toBe(phaseHash(free, 'chat'));
    const base = (await readZooArrays(path.join(out, 'base'))).arrays;
    const deltas = async (plan: ZooPlan) => {
      const dir = await tmp();
      await fs.symlink(path.join(out, 'base'), path.join(dir, 'base'));
      await trainPhase(plan, 'chat', { out: dir, resume: false, log: quiet });
      const tuned = (await readZooArrays(path.join(dir, 'chat'))).arrays;
      const d = new Map<string, number>();
      for (const [n, w] of base) d.set(n, Math.hypot(...w.map((x, i) => tuned.get(n)![i] - x)));
      return d;
    };
    const [dPulled, dFree] = [await deltas(pulled), await deltas(free)];
    const matrix = 'model.layers.0.mlp.down_proj.weight';
    // lr * decayToBase = 0.1 per step: the pull takes back a tenth of the distance each step.
    expect(dPulled.get(matrix)!).toBeLessThan(0.8 * dFree.get(matrix)!);
    expect(dPulled.get(matrix)!).toBeGreaterThan(0);
    // The base has nothing to be pulled toward: a plan that asks for it is refused before training.
    const baseDecay: ZooPlan = { ...TINY_PLAN, base: { ...TINY_PLAN.base, decayToBase: 1 } };
    await expect(trainPhase(baseDecay, 'base', { out: await tmp(), resume: false, log: quiet })).rejects.toThrow(/base\.decayToBase must be 0/);
  });
});

describe('pretraining rows', () => {
  const plan: ZooPlan = { ...TINY_PLAN, base: { ...TINY_PLAN.base, stages: [{ steps: 4, batch: 4, seqLen: 256 }] } };

  it('are whole documents joined by newlines, and the batch lists every document it holds', () => {
    const batch = makeBatch(plan, 'base', 2, []);
    const tok = planTokenizer(plan);
    expect(Array.from(batch.ids).includes(EOS_ID)).toBe(false);
    const rows = Array.from({ length: batch.B }, (_, b) => Array.from(batch.ids.slice(b * batch.T, (b + 1) * batch.T)));
    expect(rows.every((r) => r[0] === BOS_ID)).toBe(true);
    // Walk the listed documents through the rows: each row holds whole documents joined by
    // newlines and ends inside its last one (or its newline), and the next row starts a new one.
    let k = 0;
    for (const r of rows) {
      let rest = tok.decode(r.slice(1));
      while (rest.length > 0) {
        const doc = batch.documents[k++] + '\n';
        expect(doc.startsWith(rest) || rest.startsWith(doc), `row text ${JSON.stringify(rest.slice(0, 40))}`).toBe(true);
        rest = rest.slice(Math.min(doc.length, rest.length));
      }
    }
    expect(k).toBe(batch.documents.length);
    expect(batch.documents.length).toBeGreaterThan(batch.B);
  });
});

describe('COPY_PLAN', () => {
  it('is the plan the committed zoo was trained by (so `mergelab zoo train` rebuilds exactly that)', async () => {
    for (const ph of ['base', 'math', 'chat'] as const) {
      const info = JSON.parse(await fs.readFile(path.join('data/zoo', ph, 'training_info.json'), 'utf8')) as { planHash: string };
      expect(info.planHash, ph).toBe(phaseHash(COPY_PLAN, ph));
    }
  });

  it('keeps the corpus beside its copy documents: the shares sum to 1 and every kept kind scales by 1 - copy', () => {
    for (const c of [0, 0.25, 0.4]) {
      const mix = keptCorpusMix(c);
      const total = Object.values(mix).reduce((s, v) => s + (v ?? 0), 0);
      expect(total).toBeCloseTo(1, 12);
      expect(mix.copy).toBe(c);
      expect(mix.facts / keptCorpusMix(0).facts).toBeCloseTo(1 - c, 12);
    }
  });
});
