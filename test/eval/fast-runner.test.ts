/**
 * The fast runner against the tfjs reference. On the committed zoo, every item of the full math
 * and chat sets for base, math and chat gives the reference's greedy output (raw, before stop
 * strings are cut; and after cutting when the fast runner stops early) and every lm text the
 * same log-likelihood, to the bit (agreement to 1e-4 would be enough). The reference's outputs there are a fixture (test/eval/fixtures/,
 * written and checked live by test/eval/reference-fixture.ts), since running it takes minutes;
 * a merge of two zoo models at the sweep's setting (first 40 items, batch 40) is compared with
 * the reference run live.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ZooBackend } from '../../src/eval/backends/zoo.js';
import { FastZooBackend } from '../../src/eval/backends/fast.js';
import { cutAtStop } from '../../src/eval/backends/types.js';
import { readZooArrays, saveZooModel } from '../../src/zoo/io.js';
import { differences, fixtureFile, runAll, suiteRequests, weightsDigest, ZOO, ZOO_MODELS, type ModelOutputs, type ReferenceFixture } from './reference-fixture.js';

function expectSame(what: string, ref: ModelOutputs, raw: ModelOutputs, early: ModelOutputs, stops: { math: readonly string[]; chat: readonly string[] }): void {
  expect(differences(ref, raw), `${what}: fast runner (no early stop) vs reference`).toEqual([]);
  const cut: string[] = [];
  for (const suite of ['math', 'chat'] as const) {
    ref[suite].forEach((g, i) => {
      if (cutAtStop(g.text, stops[suite]).text !== cutAtStop(early[suite][i].text, stops[suite]).text) cut.push(`${suite} item ${i}`);
    });
  }
  expect(cut, `${what}: outputs after stop strings, fast runner stopping early vs reference`).toEqual([]);
}

async function stops(): Promise<{ math: readonly string[]; chat: readonly string[] }> {
  return { math: (await suiteRequests('math', 1))[0].stop, chat: (await suiteRequests('chat', 1))[0].stop };
}

async function fastOutputs(dir: string, batchSize: number, limit?: number): Promise<{ raw: ModelOutputs; early: ModelOutputs }> {
  const raw = await FastZooBackend.open(dir, { earlyStop: false, threads: 2 });
  const early = await FastZooBackend.open(dir, { threads: 2 });
  try {
    // Early stopping changes generation only: the second run does not score again.
    return { raw: await runAll(raw, dir, batchSize, limit), early: await runAll(early, dir, batchSize, limit, false) };
  } finally {
    await raw.dispose();
    await early.dispose();
  }
}

describe('fast runner = tfjs reference', () => {
  for (const model of ZOO_MODELS) {
    it(`${model}: full math and chat sets, same greedy outputs and lm log-likelihoods`, async () => {
      const dir = path.join(ZOO, model);
      const fixture = JSON.parse(readFileSync(fixtureFile(model), 'utf8')) as ReferenceFixture;
      expect(fixture.backend).toBe('zoo/tfjs-wasm');
      expect(weightsDigest(dir), `data/zoo/${model} changed since the fixture was made: rerun npx tsx test/eval/reference-fixture.ts`).toBe(fixture.outputs.weightsSha256);
      expect([fixture.outputs.math.length, fixture.outputs.chat.length, fixture.outputs.lm.length]).toEqual([300, 300, 200]);
      const { raw, early } = await fastOutputs(dir, fixture.batchSize);
      expectSame(model, fixture.outputs, raw, early, await stops());
    }, 600_000);
  }

  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'fast-runner-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('a merge (task arithmetic of math and chat at 1 and 1), live, at the sweep setting: 40 items, batch 40', async () => {
    const [base, math, chat] = await Promise.all(['base', 'math', 'chat'].map((m) => readZooArrays(path.join(ZOO, m))));
    const merged = new Map<string, Float32Array>();
    for (const [name, b] of base.arrays) {
      const m = math.arrays.get(name)!;
      const c = chat.arrays.get(name)!;
      merged.set(name, b.map((x, i) => x + (m[i] - x) + (c[i] - x)));
    }
    const dir = path.join(tmp, 'ta');
    await saveZooModel(dir, base.config, merged);
    const ref = await ZooBackend.open(dir);
    let live: ModelOutputs;
    try {
      expect(ref.name).toBe('zoo/tfjs-wasm');
      live = await runAll(ref, dir, 40, 40);
    } finally {
      ref.dispose();
    }
    const { raw, early } = await fastOutputs(dir, 40, 40);
    expectSame('task-arithmetic merge', live, raw, early, await stops());
  }, 600_000);
});
