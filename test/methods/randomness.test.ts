/**
 * DARE and della agree with the spec in distribution, and their masks are a pure function of
 * (seed, stage, model, tensor): identical across runs, backends and worker-thread splits.
 * Statistical bounds are derived from the variance (and the draws are seeded, so each test is
 * deterministic: it cannot flake, only fail when the behaviour changes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypedKernels, allocShared } from '../../src/kernels/typed.js';
import type { Kernels } from '../../src/kernels/types.js';
import { getMethod } from '../../src/methods/registry.js';
import { BACKENDS, randn } from '../kernels/backends.js';
import { input } from './helpers.js';

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function l1(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s;
}

const kernelsByLabel = new Map<string, Kernels>();

for (const backend of BACKENDS) {
  describe(`randomness (${backend.label})`, () => {
    let k: Kernels;
    beforeAll(async () => {
      k = await backend.make();
      kernelsByLabel.set(backend.label, k);
    });

    const N = 1_000_000;
    const shape = [1000, 1000];
    const base = randn(N, 1);
    const x = Float32Array.from(randn(N, 2, 0.01), (v, i) => base[i] + v + (v === 0 ? 1e-3 : 0));

    for (const method of ['dare_linear', 'della_linear'] as const) {
      it(`${method}: kept fraction within 1% of density on a million elements; L1 norm matched under the L1 rule`, async () => {
        const rho = 0.3;
        const r = await getMethod(method).mergeTensor(input(k, base, shape, [{ ref: 'm', data: x, params: { weight: 1, density: rho } }]));
        let nonzero = 0;
        for (let i = 0; i < N; i++) if (r.data[i] !== base[i]) nonzero++;
        const kept = r.diagnostics!.keptFraction.m;
        expect(Math.abs(kept - nonzero / N)).toBeLessThan(1e-4); // a kept delta can round to 0 only by accident
        expect(Math.abs(kept - rho)).toBeLessThan(0.01 * rho);
        const rel = Math.abs(l1(r.data, base) - l1(x, base)) / l1(x, base);
        expect(rel).toBeLessThan(1e-4);
        expect(getMethod(method).rescaleRule({})).toBe('l1');
      });
    }

    it('same seed: bit-identical output; different seed: different mask', async () => {
      const n = 100_000;
      const b = base.subarray(0, n);
      const models = [
        { ref: 'a', data: x.subarray(0, n), params: { weight: 0.7, density: 0.4 } },
        { ref: 'b', data: b.map((v, i) => v - x[i] + v), params: { weight: 0.5, density: 0.6 } },
      ];
      const sh = [100, 1000];
      for (const m of ['dare_ties', 'della']) {
        const r1 = await getMethod(m).mergeTensor(input(k, b, sh, models));
        const r2 = await getMethod(m).mergeTensor(input(k, b, sh, models));
        expect(same(r1.data, r2.data)).toBe(true);
        const r3 = await getMethod(m).mergeTensor(input(k, b, sh, models, {}, { seed: 43 }));
        expect(same(r1.data, r3.data)).toBe(false);
        const r4 = await getMethod(m).mergeTensor(input(k, b, sh, models, {}, { stage: 'other' }));
        expect(same(r1.data, r4.data)).toBe(false);
      }
    });

    for (const method of ['dare_linear', 'della_linear'] as const) {
      it(`${method}: under 1/density the mean of many draws is the delta (z-scores from the Bernoulli variance)`, async () => {
        const n = 2000;
        const rowLen = 100;
        const R = 400;
        const b0 = randn(n, 7);
        const x0 = Float32Array.from(randn(n, 8), (v, i) => b0[i] + v);
        const rho = 0.4;
        const eps = 0.2;
        const sum = new Float64Array(n);
        for (let s = 0; s < R; s++) {
          const r = await getMethod(method).mergeTensor(input(k, b0, [n / rowLen, rowLen],
            [{ ref: 'm', data: x0, params: { weight: 1, density: rho, epsilon: eps } }],
            { rescale: 'inverse_density' }, { seed: 1000 + s }));
          for (let i = 0; i < n; i++) sum[i] += r.data[i] - b0[i];
        }
        // Per element keep probability p (DARE: rho; della: from the within-row rank).
        const d = Array.from(x0, (v, i) => Math.fround(v - b0[i]));
        const p = new Float64Array(n).fill(rho);
        if (method === 'della_linear') {
          for (let r0 = 0; r0 < n; r0 += rowLen) {
            const idx = Array.from({ length: rowLen }, (_, j) => r0 + j).sort((a, c) => Math.abs(d[a]) - Math.abs(d[c]) || a - c);
            idx.forEach((i, r) => (p[i] = rho - eps + (2 * eps * r) / (rowLen - 1)));
          }
        }
        let maxZ = 0;
        let sumZ2 = 0;
        for (let i = 0; i < n; i++) {
          const sd = Math.abs(d[i]) * Math.sqrt((1 - p[i]) / (p[i] * R));
          const z = (sum[i] / R - d[i]) / sd;
          maxZ = Math.max(maxZ, Math.abs(z));
          sumZ2 += z * z;
        }
        // max of 2000 |z|: P(>5) ~ 1e-3 under normality; mean z^2 is 1 with sd sqrt(2/n) = 0.032.
        expect(maxZ).toBeLessThan(5);
        expect(Math.abs(sumZ2 / n - 1)).toBeLessThan(0.15);
      });
    }
  });
}

describe('randomness across backends and thread splits', () => {
  afterAll(async () => {
    for (const k of kernelsByLabel.values()) await k.dispose();
  });

  it('draws the same DARE and della masks on every backend', async () => {
    const n = 20_000;
    const b0 = randn(n, 3);
    const x0 = Float32Array.from(randn(n, 4, 0.01), (v, i) => b0[i] + v);
    const outs: Float32Array[] = [];
    for (const backend of BACKENDS) {
      const k = kernelsByLabel.get(backend.label) ?? (await backend.make());
      for (const m of ['dare_ties', 'della']) {
        const r = await getMethod(m).mergeTensor(input(k, b0, [20, 1000], [{ ref: 'm', data: x0, params: { weight: 1, density: 0.5 } }]));
        outs.push(r.data);
      }
    }
    const pattern = (a: Float32Array) => Array.from(a, (v, i) => (v === b0[i] ? 0 : 1)).join('');
    expect(pattern(outs[2])).toBe(pattern(outs[0]));
    expect(pattern(outs[3])).toBe(pattern(outs[1]));
    expect(pattern(outs[0])).not.toBe(pattern(outs[1]));
  });

  it('gives bit-identical DARE-TIES output for 1 and 3 worker threads', async () => {
    const n = (1 << 16) * 3 + 17;
    const mk = (seed: number, scale: number, add: Float32Array | null) => {
      const a = allocShared(n);
      const r = randn(n, seed, scale);
      for (let i = 0; i < n; i++) a[i] = (add ? add[i] : 0) + r[i];
      return a;
    };
    const b0 = mk(5, 1, null);
    const models = [
      { ref: 'a', data: mk(6, 0.01, b0), params: { weight: 0.6, density: 0.3 } },
      { ref: 'b', data: mk(7, 0.01, b0), params: { weight: 0.4, density: 0.5 } },
    ];
    const one = new TypedKernels({ threads: 1 });
    const three = new TypedKernels({ threads: 3, parallelMin: 1 });
    const r1 = await getMethod('dare_ties').mergeTensor(input(one, b0, [n], models));
    const r3 = await getMethod('dare_ties').mergeTensor(input(three, b0, [n], models));
    expect(same(r1.data, r3.data)).toBe(true);
    expect(r3.diagnostics).toEqual(r1.diagnostics);
    await three.dispose();
  });
});
