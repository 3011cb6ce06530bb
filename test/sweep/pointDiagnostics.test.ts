import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointWriter } from '../../src/checkpoint/writer.js';
import { computeFinalVsParents } from '../../src/sweep/pointDiagnostics.js';
import { tempDir } from './helpers.js';

async function write(dir: string, tensors: Record<string, number[]>): Promise<void> {
  const w = await CheckpointWriter.create(dir, { dtype: 'F32' });
  for (const [name, v] of Object.entries(tensors)) await w.addF32(name, [v.length], new Float32Array(v));
  await w.finish({ config: { model_type: 'llama' } });
}

describe('final-vs-parents diagnostics', () => {
  it('measures how much of each original parent survives in the final model, per tensor, layer and in total', async () => {
    const root = await tempDir('pointdiag');
    const B = { 'model.layers.0.w': [0, 0, 0, 0], 'model.layers.1.w': [1, 1, 1, 1], 'model.norm.weight': [1, 1] };
    // math's task vector is e1 (+ e2 in layer 1), chat's is -e1 + e3: they conflict in sign on element 0.
    const M = { 'model.layers.0.w': [2, 0, 0, 0], 'model.layers.1.w': [1, 3, 1, 1], 'model.norm.weight': [1, 1] };
    const C = { 'model.layers.0.w': [-1, 0, 1, 0], 'model.layers.1.w': [1, 1, 1, 1], 'model.norm.weight': [1, 1] };
    // Final: half of math's delta in layer 0 and nothing of either parent in layer 1.
    const F = { 'model.layers.0.w': [1, 0, 0, 0], 'model.layers.1.w': [1, 1, 1, 1], 'model.norm.weight': [1, 1] };
    for (const [n, t] of Object.entries({ base: B, math: M, chat: C, final: F })) await write(path.join(root, n), t);
    const d = await computeFinalVsParents(path.join(root, 'final'), { name: 'base', dir: path.join(root, 'base') }, [
      { name: 'math', dir: path.join(root, 'math') },
      { name: 'chat', dir: path.join(root, 'chat') },
    ]);
    expect(d.kind).toBe('final-vs-parents');
    const t0 = d.tensors.find((t) => t.tensor === 'model.layers.0.w')!;
    expect(t0.layer).toBe(0);
    expect(t0.mergedDeltaNorm).toBeCloseTo(1);
    expect(t0.taskVectorNorm).toEqual({ math: 2, chat: Math.SQRT2 });
    expect(t0.retained.math).toBeCloseTo(0.5); // <F-B, M-B> / ||M-B||^2 = 2/4
    expect(t0.retained.chat).toBeCloseTo(-0.5); // -1/2: the final moved against chat
    expect(t0.cosine['final|math']).toBeCloseTo(1);
    expect(t0.cosine['math|chat']).toBeCloseTo(-2 / (2 * Math.SQRT2));
    expect(t0.signConflict).toBeCloseTo(1 / 4);
    expect(t0.mergedDeltaRelToParent.math).toBeCloseTo(0.5);
    expect(t0.signAgreement).toEqual({ math: 1, chat: 0 });
    // Layer 1: the final kept nothing of math's delta; chat had none there (its rel is Infinity).
    const l1 = d.layers.find((l) => l.layer === 1)!;
    expect(l1.retained.math).toBe(0);
    expect(l1.mergedDeltaRelToParent.chat).toBe(Infinity);
    expect(d.layers.map((l) => l.layer)).toEqual([null, 0, 1]);
    // Totals combine squares: ||M-B||^2 = 4 + 4.
    expect(d.totals.taskVectorNorm.math).toBeCloseTo(Math.sqrt(8));
    expect(d.totals.retained.math).toBeCloseTo(2 / 8);
    expect(d.totals.numel).toBe(10);
  });
});
