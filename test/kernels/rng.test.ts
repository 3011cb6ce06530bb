import { describe, expect, it } from 'vitest';
import { fillBernoulli, fillUniform, maskKey, uniformBits } from '../../src/kernels/rng.js';

describe('mask rng', () => {
  const key = maskKey(7, 'stage1', 'org/math', 'model.layers.0.mlp.up_proj.weight');

  it('is a pure function of (seed, stage, model, tensor, index)', () => {
    const a = fillUniform(maskKey(7, 'stage1', 'org/math', 'model.layers.0.mlp.up_proj.weight'), new Float32Array(1000));
    const b = fillUniform(key, new Float32Array(1000));
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    // Any window of the stream equals the same slice of the whole stream (order and split free).
    const w = fillUniform(key, new Float32Array(300), 417);
    expect(Array.from(w)).toEqual(Array.from(a.subarray(417, 717)));
    for (const i of [0, 1, 999]) expect(a[i]).toBe(uniformBits(key, i) / 2 ** 24);
  });

  it('gives different streams for different seeds, stages, models, tensors and field splits', () => {
    const keys = [
      maskKey(8, 'stage1', 'org/math', 'model.layers.0.mlp.up_proj.weight'),
      maskKey(7, 'stage2', 'org/math', 'model.layers.0.mlp.up_proj.weight'),
      maskKey(7, 'stage1', 'org/chat', 'model.layers.0.mlp.up_proj.weight'),
      maskKey(7, 'stage1', 'org/math', 'model.layers.1.mlp.up_proj.weight'),
      maskKey(7, 'stage', '1org/math', 'model.layers.0.mlp.up_proj.weight'),
    ];
    const ref = fillUniform(key, new Float32Array(64));
    for (const k of keys) {
      const s = fillUniform(k, new Float32Array(64));
      let same = 0;
      for (let i = 0; i < 64; i++) if (s[i] === ref[i]) same++;
      expect(same).toBeLessThan(3);
    }
  });

  it('is uniform on [0, 1): mean, variance, decile counts, lag-1 correlation', () => {
    const n = 1 << 20;
    const u = fillUniform(key, new Float32Array(n));
    let sum = 0;
    let sq = 0;
    let lag = 0;
    const bins = new Array(10).fill(0);
    let min = 1;
    let max = 0;
    for (let i = 0; i < n; i++) {
      const v = u[i];
      sum += v;
      sq += v * v;
      if (i > 0) lag += (v - 0.5) * (u[i - 1] - 0.5);
      bins[Math.floor(v * 10)]++;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    // Standard errors: mean 0.289/sqrt(n) = 2.8e-4; variance ~2.6e-4; lag corr 1/sqrt(n) ~ 1e-3.
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(5 * 2.8e-4);
    expect(Math.abs(sq / n - (sum / n) ** 2 - 1 / 12)).toBeLessThan(5 * 2.7e-4);
    expect(Math.abs(lag / (n - 1) / (1 / 12))).toBeLessThan(5e-3);
    // Chi-square with 9 degrees of freedom: 99.99th percentile is 33.7.
    const chi = bins.reduce((a, c) => a + (c - n / 10) ** 2 / (n / 10), 0);
    expect(chi).toBeLessThan(33.7);
  });

  it('keeps an element in a Bernoulli mask exactly when its uniform is below p', () => {
    const n = 100_000;
    const u = fillUniform(key, new Float32Array(n));
    for (const p of [0.1, 0.5, 0.3333333, 1 - 1e-9, 1e-7]) {
      const m = new Uint8Array(n);
      const kept = fillBernoulli(key, p, m);
      const want = Uint8Array.from(u, (v) => (v < p ? 1 : 0));
      expect(Buffer.from(m).equals(Buffer.from(want))).toBe(true);
      expect(kept).toBe(want.reduce((a, b) => a + b, 0));
    }
  });

  it('re-keys past 2^32 elements without wrapping', () => {
    const at = 2 ** 32;
    const high = fillUniform(key, new Float32Array(8), at - 4);
    for (let j = 0; j < 8; j++) expect(high[j]).toBe(uniformBits(key, at - 4 + j) / 2 ** 24);
    const low = fillUniform(key, new Float32Array(4));
    expect(Array.from(high.subarray(4))).not.toEqual(Array.from(low));
  });
});
