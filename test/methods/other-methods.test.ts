import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../../src/kernels/types.js';
import { getMethod } from '../../src/methods/registry.js';
import { isEmbeddingTensor, layerIndex } from '../../src/checkpoint/names.js';
import { UserError } from '../../src/util/errors.js';
import { BACKENDS, expectClose, randn } from '../kernels/backends.js';
import { f32, input } from './helpers.js';

for (const backend of BACKENDS) {
  describe(`linear, slerp, model_stock, passthrough (${backend.label})`, () => {
    let k: Kernels;
    beforeAll(async () => {
      k = await backend.make();
    });
    afterAll(async () => {
      await k.dispose();
    });

    it('linear: normalized by default, plain sum without normalize', async () => {
      const m = getMethod('linear');
      const models = [
        { ref: 'a', data: f32(1, 2), params: { weight: 1 } },
        { ref: 'b', data: f32(3, 6), params: { weight: 3 } },
      ];
      expectClose((await m.mergeTensor(input(k, null, [2], models))).data, [2.5, 5]);
      expectClose((await m.mergeTensor(input(k, null, [2], models, { normalize: false }))).data, [10, 20]);
      await expect(m.mergeTensor(input(k, null, [2], [models[0], { ref: 'c', data: f32(0, 0), params: { weight: -1 } }])))
        .rejects.toThrow(/sum to 0/);
      await expect(m.mergeTensor(input(k, null, [2], [{ ref: 'a', data: f32(1, 2) }]))).rejects.toThrow(/"a".*missing required parameter weight/);
    });

    it('linear: embeddings cropped to the common block, other mismatches rejected; diagnostics against the base', async () => {
      const m = getMethod('linear');
      const models = [
        { ref: 'a', data: f32(1, 1, 1, 1), shape: [2, 2], params: { weight: 1 } },
        { ref: 'b', data: f32(3, 3, 3, 3, 9, 9), shape: [3, 2], params: { weight: 1 } },
      ];
      const r = await m.mergeTensor(input(k, null, [2, 2], models, {}, { tensor: 'lm_head.weight', isEmbedding: true }));
      expect(r.shape).toEqual([2, 2]);
      expectClose(r.data, [2, 2, 2, 2]);
      await expect(m.mergeTensor(input(k, null, [2, 2], models))).rejects.toThrow(UserError);
      const withBase = await m.mergeTensor(input(k, f32(1, 1), [2], [
        { ref: 'a', data: f32(1, 1), params: { weight: 1 } },
        { ref: 'b', data: f32(3, 1), params: { weight: 1 } },
      ]));
      expect(withBase.diagnostics!.mergedDeltaNorm).toBeCloseTo(1, 6);
      expect(withBase.diagnostics!.taskVectorNorm.b).toBeCloseTo(2, 6);
    });

    it('slerp by hand: orthogonal, unequal norms, t = 0 and t = 1, near-parallel falls back to lerp', async () => {
      const m = getMethod('slerp');
      const run = async (v0: Float32Array, v1: Float32Array, t: number) =>
        (await m.mergeTensor(input(k, v0, [v0.length], [{ ref: 'other', data: v1 }], { t }))).data;
      expectClose(await run(f32(1, 0), f32(0, 1), 0.5), [Math.SQRT1_2, Math.SQRT1_2]);
      expectClose(await run(f32(2, 0), f32(0, 3), 0.5), [2 * Math.SQRT1_2, 3 * Math.SQRT1_2]);
      // theta = pi/3 between (1,0) and (1/2, sqrt3/2); t = 1/4: sin(pi/4)/sin(pi/3), sin(pi/12)/sin(pi/3)
      const s = Math.sin(Math.PI / 3);
      const c0 = Math.sin(Math.PI / 4) / s;
      const c1 = Math.sin(Math.PI / 12) / s;
      expectClose(await run(f32(1, 0), f32(0.5, Math.sqrt(3) / 2), 0.25), [c0 + 0.5 * c1, (c1 * Math.sqrt(3)) / 2]);
      const v0 = f32(1.5, -2, 0.25);
      expect(Array.from(await run(v0, f32(-1, 4, 2), 0))).toEqual(Array.from(v0));
      expectClose(await run(v0, f32(-1, 4, 2), 1), [-1, 4, 2], 1e-6);
      expectClose(await run(f32(1, 0), f32(2, 1e-4), 0.25), [1.25, 0.25e-4], 1e-6);
      expectClose(await run(f32(1, 0), f32(-2, 0), 0.5), [-0.5, 0]);
      await expect(m.mergeTensor(input(k, v0, [3], [{ ref: 'o', data: v0 }]))).rejects.toThrow(/missing required parameter t/);
    });

    it('model_stock by hand and against the formula for three models', async () => {
      const m = getMethod('model_stock');
      // d1 = (1,1), d2 = (1,0): cos = 1/sqrt2, t = 2c/(1+c)
      const c = Math.SQRT1_2;
      const t = (2 * c) / (1 + c);
      const base = f32(1, 1);
      const r = await m.mergeTensor(input(k, base, [2], [
        { ref: 'a', data: f32(2, 2) },
        { ref: 'b', data: f32(2, 1) },
      ]));
      expectClose(r.data, [t * 2 + (1 - t), t * 1.5 + (1 - t)]);
      expect(r.diagnostics!.cosine['a|b']).toBeCloseTo(c, 6);
      expect(r.diagnostics!.mergedDeltaNorm).toBeCloseTo(t * Math.hypot(1, 0.5), 5);
      // Orthogonal task vectors: t = 0, output = base.
      expectClose((await m.mergeTensor(input(k, base, [2], [{ ref: 'a', data: f32(2, 1) }, { ref: 'b', data: f32(1, 2) }]))).data, [1, 1]);
      const N = 300;
      const b0 = randn(N, 1);
      const xs = [2, 3, 4].map((s) => Float32Array.from(randn(N, s, 0.1), (v, i) => b0[i] + v + 0.05));
      const ds = xs.map((x) => Array.from(x, (v, i) => v - b0[i]));
      const dot = (p: number[], q: number[]) => p.reduce((acc, v, i) => acc + v * q[i], 0);
      const cosines = [[0, 1], [0, 2], [1, 2]].map(([i, j]) => dot(ds[i], ds[j]) / Math.sqrt(dot(ds[i], ds[i]) * dot(ds[j], ds[j])));
      const cm = cosines.reduce((p, q) => p + q) / 3;
      const t3 = (3 * cm) / (1 + 2 * cm);
      const want = Array.from(b0, (bv, i) => t3 * ((xs[0][i] + xs[1][i] + xs[2][i]) / 3) + (1 - t3) * bv);
      const r3 = await m.mergeTensor(input(k, b0, [N], xs.map((x, i) => ({ ref: `m${i}`, data: x }))));
      expectClose(r3.data, want, 1e-5);
      await expect(m.mergeTensor(input(k, base, [2], [{ ref: 'a', data: f32(2, 2) }]))).rejects.toThrow(/at least two/);
    });

    it('passthrough: one model, optional scale', async () => {
      const m = getMethod('passthrough');
      const x = f32(1, -2, 3);
      expectClose((await m.mergeTensor(input(k, null, [3], [{ ref: 'a', data: x, params: { scale: 0.5 } }]))).data, [0.5, -1, 1.5]);
      const same = await m.mergeTensor(input(k, null, [3], [{ ref: 'a', data: x }]));
      expect(Array.from(same.data)).toEqual([1, -2, 3]);
      expect(same.data).not.toBe(x);
      await expect(m.mergeTensor(input(k, null, [3], [{ ref: 'a', data: x }, { ref: 'b', data: x }]))).rejects.toThrow(UserError);
    });
  });
}

describe('tensor names', () => {
  it('recognises embedding-like tensors', () => {
    for (const n of ['model.embed_tokens.weight', 'lm_head.weight', 'transformer.wte.weight', 'transformer.wpe.weight', 'embed_out.weight', 'output.weight', 'gpt_neox.embed_in.weight']) {
      expect(isEmbeddingTensor(n)).toBe(true);
    }
    for (const n of ['model.layers.0.self_attn.q_proj.weight', 'model.norm.weight', 'bert.encoder.layer.0.attention.output.dense.weight']) {
      expect(isEmbeddingTensor(n)).toBe(false);
    }
  });
  it('parses layer indices', () => {
    expect(layerIndex('model.layers.17.mlp.up_proj.weight')).toBe(17);
    expect(layerIndex('transformer.h.3.attn.c_attn.weight')).toBe(3);
    expect(layerIndex('model.embed_tokens.weight')).toBeNull();
    expect(layerIndex('model.norm.weight')).toBeNull();
  });
});
