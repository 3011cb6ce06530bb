import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskKey, fillUniform } from '../../src/kernels/rng.js';
import { WorkerPool } from '../../src/kernels/pool.js';
import { TypedKernels, allocShared } from '../../src/kernels/typed.js';
import type { CombineSpec, Kernels } from '../../src/kernels/types.js';
import { KERNEL_BACKENDS, expectClose, randn } from './backends.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/checkpoint/dtype.js';

/** Naive per-element combine, straight from spec §1 steps 3-6. */
function refCombine(s: CombineSpec): { out: Float64Array; conflicts: number } {
  const N = s.base.length;
  const n = s.models.length;
  const out = new Float64Array(N);
  let conflicts = 0;
  const wsum = s.weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < N; j++) {
    const e = s.models.map((x, i) => {
      const m = s.masks[i];
      return s.coeffs[i] * (m ? m[j] : 1) * (x[j] - s.base[j]);
    });
    if (e.some((v) => v > 0) && e.some((v) => v < 0)) conflicts++;
    const sum = e.reduce((a, b) => a + b, 0);
    let mixed: number;
    let div: number;
    if (s.consensus) {
      const elected = sum >= 0 ? 1 : -1;
      const match = e.map((v) => (v === 0 ? 0 : Math.sign(v) === elected ? 1 : 0));
      mixed = e.reduce((a, v, i) => a + v * match[i], 0);
      div = s.weights.reduce((a, w, i) => a + w * match[i], 0);
      if (div === 0) div = 1;
    } else {
      mixed = sum;
      div = Math.abs(wsum) < 1e-8 ? 1 : wsum;
    }
    if (s.normalize) mixed /= div;
    mixed *= s.lambda;
    out[j] = s.base[j] + mixed;
  }
  void n;
  return { out, conflicts };
}

for (const backend of KERNEL_BACKENDS) {
  describe(`kernels (${backend.label})`, () => {
    let k: Kernels;
    beforeAll(async () => {
      k = await backend.make();
    });
    afterAll(async () => {
      await k.dispose();
    });

    it('widen16 and narrow16 convert bf16 and f16 exactly as the checkpoint codecs do', async () => {
      // Specials and rounding cases, then random values; odd length so no range is even.
      const specials = [0, -0, 1, -1, 65504, 1e-8, -3.0000001, Infinity, -Infinity, NaN, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 6e-5, 1e38];
      const src = Float32Array.from([...specials, ...randn(20_001, 5)]);
      for (const dtype of ['BF16', 'F16'] as const) {
        const want = dtype === 'BF16' ? f32ToBf16(src) : f32ToF16(src);
        const half = new Uint16Array(src.length);
        await k.narrow16(dtype, src, half);
        expect(Buffer.from(half.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        const buf = new Float32Array(src.length);
        new Uint16Array(buf.buffer, 0, src.length).set(half);
        await k.widen16(dtype, buf);
        const ref = dtype === 'BF16' ? bf16ToF32(half) : f16ToF32(half);
        expect(Buffer.from(buf.buffer).equals(Buffer.from(ref.buffer))).toBe(true);
      }
    });

    it('reports its backend name', () => {
      expect(['typed', 'tfjs-wasm', 'tfjs-cpu', 'tfjs-node', 'tfjs-node-gpu']).toContain(k.name);
    });

    it('gram: l1, squared norms and dots of deltas', async () => {
      const base = Float32Array.from([1, 2, 3]);
      const a = Float32Array.from([2, 2, 1]); // d = 1 0 -2
      const b = Float32Array.from([0, 3, 3]); // d = -1 1 0
      const g = await k.gram([a, b], base);
      expectClose(g.l1, [3, 2]);
      expectClose(g.l2sq, [5, 2]);
      expectClose(g.dot, [5, -1, -1, 2]);
      const raw = await k.gram([a], null);
      expectClose(raw.l2sq, [9]);
    });

    it('rankBandMask: exact count and the documented tie rule, across chunk seams', async () => {
      const N = 5000;
      const base = randn(N, 11);
      const x = Float32Array.from(base, (v, i) => v + (i % 10 === 0 ? 0 : Math.round(Math.sin(i) * 4) / 8));
      const d = Float32Array.from(x, (v, i) => v - base[i]);
      const order = Array.from(d, (_, i) => i).sort((p, q) => Math.abs(d[p]) - Math.abs(d[q]) || q - p);
      for (const [lo, hi] of [[N - 1234, N], [700, N - 50], [0, N]]) {
        const m = await k.rankBandMask(x, base, lo, hi);
        const want = new Uint8Array(N);
        for (let p = lo; p < hi; p++) want[order[p]] = 1;
        expect(Array.from(m)).toEqual(Array.from(want));
      }
    });

    it('bernoulliMask equals the shared rng stream', async () => {
      const key = maskKey(3, 's', 'm', 't');
      const u = fillUniform(key, new Float32Array(3000));
      const m = await k.bernoulliMask(key, 0.4, 3000);
      expect(Array.from(m)).toEqual(Array.from(u, (v) => (v < 0.4 ? 1 : 0)));
    });

    it('dellaMask: probabilities from within-row ranks, 1/p under inverse probability', async () => {
      const rowLen = 50;
      const N = rowLen * 40;
      const base = randn(N, 21);
      const x = randn(N, 22);
      const key = maskKey(1, 's', 'm', 'w');
      const rho = 0.5;
      const eps = 0.2;
      const u = fillUniform(key, new Float32Array(N));
      const want = new Float32Array(N);
      for (let r0 = 0; r0 < N; r0 += rowLen) {
        const d = Array.from({ length: rowLen }, (_, j) => Math.fround(x[r0 + j] - base[r0 + j]));
        const order = d.map((_, j) => j).sort((p, q) => Math.abs(d[p]) - Math.abs(d[q]) || p - q);
        order.forEach((j, r) => {
          const p = rho - eps + (2 * eps * r) / (rowLen - 1);
          if (u[r0 + j] < p) want[r0 + j] = 1 / p;
        });
      }
      const inv = await k.dellaMask(x, base, rowLen, rho, eps, key, true);
      expectClose(inv.mask, want, 1e-6);
      const bin = await k.dellaMask(x, base, rowLen, rho, eps, key, false);
      expect(Array.from(bin.mask)).toEqual(Array.from(want, (v) => (v > 0 ? 1 : 0)));
      expect(bin.kept).toBe(want.filter((v) => v > 0).length);
    });

    it('maskedL1: full and kept L1 and count', async () => {
      const base = Float32Array.from([0, 0, 0, 0]);
      const x = Float32Array.from([1, -2, 3, -4]);
      expect(await k.maskedL1(x, base, Uint8Array.from([1, 0, 0, 1]))).toEqual({ full: 10, kept: 5, count: 2 });
      const r = await k.maskedL1(x, base, Float32Array.from([0, 2, 0, 0.5]));
      expect(r).toEqual({ full: 10, kept: 6, count: 2 });
      expect(await k.maskedL1(x, base, null)).toEqual({ full: 10, kept: 10, count: 4 });
    });

    it('combine: hand-checked consensus with zeros and a zero divisor', async () => {
      const base = Float32Array.from([0, 0, 0, 0, 0, 0]);
      // e per element: model a, model b
      const a = Float32Array.from([1, 2, -1, 0, 0, 1.5]);
      const b = Float32Array.from([-3, 2, -1, 0, 5, -1.5]);
      const spec: CombineSpec = {
        base, models: [a, b], masks: [null, null], coeffs: [1, 1], weights: [1, 1],
        consensus: true, normalize: true, lambda: 1,
      };
      const r = await k.combine(spec);
      // el0: sum -2 -> elected -, only b matches: -3/1. el1: both +: 4/2. el2: both -: -2/2.
      // el3: all zero: sum 0 -> +, no match (0 never matches), divisor 0 -> 1: 0. el4: only b: 5/1.
      // el5: sum exactly 0 -> elected +, only a matches: 1.5/1.
      expectClose(r.out, [-3, 2, -1, 0, 5, 1.5]);
      expect(r.signConflicts).toBe(2);
      const noNorm = await k.combine({ ...spec, normalize: false, lambda: 0.5 });
      expectClose(noNorm.out, [-1.5, 2, -1, 0, 2.5, 0.75]);
    });

    it('combine: signs of tiny deltas count (tf.sign on wasm returns 0 below 1.2e-7)', async () => {
      const base = Float32Array.from([0, 0]);
      const a = Float32Array.from([1e-9, -1e-9]);
      const b = Float32Array.from([-3e-9, 2e-9]);
      const r = await k.combine({
        base, models: [a, b], masks: [null, null], coeffs: [1, 1], weights: [1, 1],
        consensus: true, normalize: true, lambda: 1,
      });
      expectClose(r.out, [-3e-9, 2e-9], 1e-12);
      expect(r.signConflicts).toBe(2);
    });

    it('combine: matches the naive reference on random data for every option', async () => {
      const N = 3001;
      const base = randn(N, 1);
      const models = [randn(N, 2), randn(N, 3), randn(N, 4)].map((m) => Float32Array.from(m, (v, i) => base[i] + 0.1 * v));
      const key = maskKey(5, 's', 'x', 'y');
      const m0 = await k.bernoulliMask(key, 0.5, N);
      const m1 = Float32Array.from(randn(N, 9), (v) => (v > 0 ? 1 / 0.7 : 0));
      const m2 = await k.bernoulliMask(maskKey(6, 's', 'x', 'y'), 0.8, N);
      // Three models hit the general loop; two with 0/1 masks hit the fused pair loop.
      const variants: Array<{ models: Float32Array[]; masks: CombineSpec['masks'] }> = [
        { models, masks: [m0, m1, null] },
        { models: models.slice(0, 2), masks: [m0, m2] },
        { models: models.slice(0, 2), masks: [null, m2] },
      ];
      for (const v of variants) for (const consensus of [false, true]) {
        for (const normalize of [false, true]) {
          for (const [weights, coeffs] of [[[0.5, 0.3, 0.2], [0.5, 0.6, 0.2]], [[1, -1, 0], [1, -1, 0]]]) {
            const n = v.models.length;
            const spec: CombineSpec = {
              base, models: v.models, masks: v.masks, coeffs: coeffs.slice(0, n), weights: weights.slice(0, n),
              consensus, normalize, lambda: 1.3, gram: true,
            };
            const r = await k.combine(spec);
            const ref = refCombine(spec);
            expectClose(r.out, ref.out, 2e-5);
            expect(Math.abs(r.signConflicts - ref.conflicts)).toBeLessThanOrEqual(k.name === 'typed' ? 0 : 2);
            const g = await k.gram(v.models, base);
            expectClose(r.gram!.dot, g.dot, 1e-4);
            let sq = 0;
            for (let j = 0; j < N; j++) sq += (ref.out[j] - base[j]) ** 2;
            expect(r.mergedDeltaL2sq).toBeCloseTo(sq, 2);
          }
        }
      }
    });

    it('weightedSum', async () => {
      const r = await k.weightedSum([Float32Array.from([1, 2]), Float32Array.from([3, 4]), Float32Array.from([1, 1])], [2, -1, 0.5]);
      expectClose(r, [-0.5, 0.5]);
    });
  });
}

describe('typed backend worker split', () => {
  it('gives bit-identical results for 1 and 3 threads on shared arrays, and exits cleanly', async () => {
    const N = (1 << 16) * 5 + 123;
    const mk = (seed: number) => {
      const a = allocShared(N);
      a.set(randn(N, seed));
      return a;
    };
    const base = mk(1);
    const models = [mk(2), mk(3)];
    const one = new TypedKernels({ threads: 1 });
    const three = new TypedKernels({ threads: 3, parallelMin: 1 });
    const key = maskKey(9, 's', 'm', 't');
    const m1 = await one.bernoulliMask(key, 0.3, N);
    const m3 = await three.bernoulliMask(key, 0.3, N);
    expect(Buffer.from(m3).equals(Buffer.from(m1))).toBe(true);
    expect(m3.buffer).toBeInstanceOf(SharedArrayBuffer);
    const l1a = await one.maskedL1(models[0], base, m1);
    const l1b = await three.maskedL1(models[0], base, m3);
    expect(l1b).toEqual(l1a);
    const spec: CombineSpec = {
      base, models, masks: [m1, null], coeffs: [0.7 * (l1a.full / l1a.kept), 0.4], weights: [0.7, 0.4],
      consensus: true, normalize: true, lambda: 1, gram: true,
    };
    const r1 = await one.combine(spec);
    const r3 = await three.combine({ ...spec, masks: [m3, null] });
    expect(Buffer.from(r3.out.buffer).equals(Buffer.from(r1.out.buffer))).toBe(true);
    expect(r3.gram).toEqual(r1.gram);
    expect(r3.mergedDeltaL2sq).toBe(r1.mergedDeltaL2sq);
    expect(await three.gram(models, base)).toEqual(await one.gram(models, base));
    // Selection with many ties at the boundary, spread over every thread's range.
    const q = allocShared(N);
    const zero = allocShared(N);
    for (let i = 0; i < N; i++) q[i] = Math.round(models[0][i] * 3) / 4; // a handful of distinct magnitudes
    for (const [lo, hi] of [[N - 1000, N], [Math.floor(N / 3), N - 7], [N >> 1, N]]) {
      const a1 = await one.rankBandMask(q, zero, lo, hi);
      const a3 = await three.rankBandMask(q, zero, lo, hi);
      expect(a3.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(Buffer.from(a3).equals(Buffer.from(a1))).toBe(true);
      expect(a3.reduce((acc, v) => acc + v, 0)).toBe(hi - lo);
    }
    const rowLen = 1000;
    const nRows = Math.floor(N / rowLen);
    const xr = models[0].subarray(0, nRows * rowLen);
    const br = allocShared(nRows * rowLen);
    br.set(base.subarray(0, nRows * rowLen));
    const xs = allocShared(nRows * rowLen);
    xs.set(xr);
    for (const inv of [false, true]) {
      const d1 = await one.dellaMask(xs, br, rowLen, 0.5, 0.2, key, inv);
      const d3 = await three.dellaMask(xs, br, rowLen, 0.5, 0.2, key, inv);
      expect(d3.mask.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(Buffer.from(d3.mask.buffer).equals(Buffer.from(d1.mask.buffer))).toBe(true);
      expect(d3.kept).toBe(d1.kept);
      expect(d3.meanInvP).toBe(d1.meanInvP);
    }
    const w1 = await one.weightedSum(models, [0.2, 0.8]);
    const w3 = await three.weightedSum(models, [0.2, 0.8]);
    expect(Buffer.from(w3.buffer).equals(Buffer.from(w1.buffer))).toBe(true);
    // In-place widening in phases over three threads, for lengths around the phase boundaries.
    for (const n of [N, N - 1, 7, 1]) {
      const half = new Uint16Array(n);
      for (let i = 0; i < n; i++) half[i] = (i * 40503 + 7) & 0xffff;
      for (const dtype of ['BF16', 'F16'] as const) {
        const buf = allocShared(n);
        new Uint16Array(buf.buffer, 0, n).set(half);
        await three.widen16(dtype, buf);
        const ref = dtype === 'BF16' ? bf16ToF32(half) : f16ToF32(half);
        expect({ n, dtype, same: Buffer.from(buf.buffer).equals(Buffer.from(ref.buffer)) }).toEqual({ n, dtype, same: true });
      }
    }
    const h1 = new Uint16Array(new SharedArrayBuffer(2 * N));
    const h3 = new Uint16Array(new SharedArrayBuffer(2 * N));
    await one.narrow16('BF16', w1, h1);
    await three.narrow16('BF16', w3, h3);
    expect(Buffer.from(h3.buffer).equals(Buffer.from(h1.buffer))).toBe(true);
    await three.dispose();
  });
});

describe('typed backend buffer reuse', () => {
  it('hands out fresh buffers until reuseBuffers(), then the same ones again, with the same results', async () => {
    const N = (1 << 16) * 3;
    const base = allocShared(N);
    const x = allocShared(N);
    x.set(randn(N, 8));
    const k = new TypedKernels({ threads: 2, parallelMin: 1 });
    const spec = (): CombineSpec => ({ base, models: [x], masks: [null], coeffs: [0.5], weights: [0.5], consensus: false, normalize: false, lambda: 1 });
    try {
      const a = await k.combine(spec());
      const b = await k.combine(spec());
      expect(b.out.buffer).not.toBe(a.out.buffer);
      const want = Buffer.from(a.out.buffer.slice(0));
      k.reuseBuffers();
      const c = await k.combine(spec());
      k.reuseBuffers();
      const m1 = await k.rankBandMask(x, base, N - 10, N);
      const m2 = await k.rankBandMask(x, base, 0, 0);
      expect(m1.reduce((s, v) => s + v, 0)).toBe(10);
      expect(m2.reduce((s, v) => s + v, 0)).toBe(0);
      k.reuseBuffers();
      const d = await k.combine(spec());
      expect(d.out.buffer).toBe(c.out.buffer);
      expect(Buffer.from(d.out.buffer).equals(want)).toBe(true);
      // A buffer no tensor has used for 12 reuse rounds is let go (a shape that has passed).
      for (let i = 0; i < 3; i++) k.reuseBuffers();
      expect((await k.combine(spec())).out.buffer).toBe(d.out.buffer);
      for (let i = 0; i < 5; i++) k.reuseBuffers();
      expect((await k.combine(spec())).out.buffer).not.toBe(d.out.buffer);
    } finally {
      await k.dispose();
    }
  });
});

describe('typed backend without workers', () => {
  it('redoes the ranges of failed workers on the calling thread, bit-identically, and stays single-threaded', async () => {
    const N = (1 << 16) * 4 + 5;
    const base = allocShared(N);
    const x = allocShared(N);
    base.set(randn(N, 1));
    x.set(randn(N, 2));
    const one = new TypedKernels({ threads: 1 });
    const want = await one.rankBandMask(x, base, N >> 1, N);
    const wantOut = await one.combine({ base, models: [x], masks: [want], coeffs: [0.5], weights: [0.5], consensus: true, normalize: true, lambda: 1, gram: true });
    const realRun = WorkerPool.prototype.run;
    WorkerPool.prototype.run = function (_body, ranges) {
      return ranges.map(() => Promise.reject(new Error('simulated: worker could not start')));
    };
    const warnings: string[] = [];
    const onWarn = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarn);
    try {
      const three = new TypedKernels({ threads: 3, parallelMin: 1 });
      const got = await three.rankBandMask(x, base, N >> 1, N);
      expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
      expect(three.threads).toBe(1);
      const out = await three.combine({ base, models: [x], masks: [got], coeffs: [0.5], weights: [0.5], consensus: true, normalize: true, lambda: 1, gram: true });
      expect(Buffer.from(out.out.buffer).equals(Buffer.from(wantOut.out.buffer))).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(warnings.join()).toMatch(/worker threads failed.*simulated/);
      await three.dispose();
    } finally {
      WorkerPool.prototype.run = realRun;
      process.off('warning', onWarn);
    }
  });
});
