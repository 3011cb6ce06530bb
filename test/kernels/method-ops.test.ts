/**
 * The kernel ops of the newer mergekit methods, on every backend, against naive float64 loops
 * written from mergekit's formulas (each named where it is used). tfjs runs with 1000-element
 * chunks, so chunk seams fall inside rows and the per-column sums cross chunks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kernels, VectorLayout } from '../../src/kernels/types.js';
import { KERNEL_BACKENDS, expectClose, randn } from './backends.js';

const ROWS = 60;
const COLS = 45;
const N = ROWS * COLS;

function vectorsOf(layout: VectorLayout): number[][] {
  const out: number[][] = [];
  if (layout.along === 'rows') for (let r = 0; r < layout.rows; r++) out.push(Array.from({ length: layout.cols }, (_, c) => r * layout.cols + c));
  else for (let c = 0; c < layout.cols; c++) out.push(Array.from({ length: layout.rows }, (_, r) => r * layout.cols + c));
  return out;
}

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

for (const backend of KERNEL_BACKENDS) {
  describe(`method kernel ops (${backend.label})`, () => {
    let k: Kernels;
    const base = randn(N, 1);
    const xs = [2, 3, 4].map((s) => Float32Array.from(randn(N, s, 0.05), (v, i) => base[i] + v));
    beforeAll(async () => {
      k = await backend.make();
    });
    afterAll(async () => {
      await k.dispose();
    });

    it('vectorGram and vectorLerp work per row and per column, with and without a base', async () => {
      for (const along of ['rows', 'cols'] as const) {
        const layout = { rows: ROWS, cols: COLS, along };
        const vecs = vectorsOf(layout);
        for (const b of [base, null]) {
          const g = await k.vectorGram(xs[0], xs[1], b, layout);
          const z = (j: number) => (b ? b[j] : 0);
          expect(g.dot.length).toBe(vecs.length);
          vecs.forEach((idx, v) => {
            const dot = idx.reduce((a, j) => a + (xs[0][j] - z(j)) * (xs[1][j] - z(j)), 0);
            const aa = idx.reduce((a, j) => a + (xs[0][j] - z(j)) ** 2, 0);
            const bb = idx.reduce((a, j) => a + (xs[1][j] - z(j)) ** 2, 0);
            expectClose([g.dot[v], g.aa[v], g.bb[v]], [dot, aa, bb], 1e-5);
          });
          const c0 = Float64Array.from(vecs, (_, v) => 0.25 + v / 100);
          const c1 = Float64Array.from(vecs, (_, v) => 1 - v / 70);
          const out = await k.vectorLerp(xs[0], xs[1], b, layout, c0, c1);
          const want = new Float64Array(N);
          vecs.forEach((idx, v) => idx.forEach((j) => (want[j] = z(j) + c0[v] * (xs[0][j] - z(j)) + c1[v] * (xs[1][j] - z(j)))));
          expectClose(out, want, 1e-6);
        }
      }
    });

    it('nearswap: weight clamp(t / max(|x - b|, 1e-6), 0, 1) (mergekit nearswap_merge)', async () => {
      const x = Float32Array.from(xs[0]);
      x[0] = base[0]; // |x - b| = 0: weight clamps to 1, the result is x (= b)
      x[1] = base[1] + 0.5; // t / 0.5 = 0.02
      const t = 0.01;
      const out = await k.nearswap(base, x, t);
      const want = Array.from(base, (b, j) => {
        const w = Math.min(1, Math.max(0, t / Math.max(Math.abs(x[j] - b), 1e-6)));
        return w * x[j] + (1 - w) * b;
      });
      expectClose(out, want, 1e-6);
      expect(out[0]).toBe(base[0]);
      expect(out[1]).toBeCloseTo(0.02 * x[1] + 0.98 * base[1], 6);
    });

    it('deltaVariance is the population variance of the deltas; maskedSumSq sums masked squares', async () => {
      const v = await k.deltaVariance(xs, base);
      const want = Array.from(base, (b, j) => {
        const d = xs.map((x) => x[j] - b);
        const m = d.reduce((a, c) => a + c, 0) / d.length;
        return d.reduce((a, c) => a + (c - m) ** 2, 0) / d.length;
      });
      expectClose(v, want, 1e-5);
      const mask = Uint8Array.from({ length: N }, (_, j) => +(j % 3 !== 0));
      const sq = await k.maskedSumSq(xs, base, mask);
      const wantSq = xs.map((x) => Array.from(x).reduce((a, c, j) => a + (mask[j] ? (c - base[j]) ** 2 : 0), 0));
      expectClose(sq, wantSq, 1e-5);
      expectClose(await k.maskedSumSq(xs.slice(0, 1), base, null), [Array.from(xs[0]).reduce((a, c, j) => a + (c - base[j]) ** 2, 0)], 1e-5);
    });

    it('consensusMean: unweighted sign election, weighted mean of the agreeing deltas, clamped divisor (mergekit sce_merge)', async () => {
      const mask = Uint8Array.from({ length: N }, (_, j) => +(j % 4 !== 1));
      const coeffs = [0.5, 0.3, 0.2];
      const out = await k.consensusMean({ base, models: xs, mask, coeffs, minDivisor: 1e-6 });
      const want = Array.from(base, (b, j) => {
        const e = xs.map((x) => (mask[j] ? x[j] - b : 0));
        const up = e.reduce((a, c) => a + c, 0) >= 0;
        let num = 0;
        let den = 0;
        e.forEach((v, i) => {
          if (v !== 0 && v > 0 === up) {
            num += coeffs[i] * v;
            den += coeffs[i];
          }
        });
        return b + num / Math.max(den, 1e-6);
      });
      expectClose(out, want, 1e-5);
      // Masked-out positions keep the base exactly (0 / 1e-6).
      expect(out[1]).toBe(base[1]);
      // By hand, weights (0.2, 0.3, 0.5): deltas (1, 1, -3) elect "-", only the third agrees; (2, -1, -1.5)
      // elect "-", the mean of the last two is (0.3 * -1 + 0.5 * -1.5) / 0.8; (1, -1, 0) sum to 0, which
      // elects "+", and the zero delta agrees with neither sign.
      const b3 = Float32Array.from([0, 0, 0]);
      const m3 = [Float32Array.from([1, 2, 1]), Float32Array.from([1, -1, -1]), Float32Array.from([-3, -1.5, 0])];
      expectClose(await k.consensusMean({ base: b3, models: m3, mask: null, coeffs: [0.2, 0.3, 0.5], minDivisor: 1e-6 }), [-3, -1.3125, 1], 1e-6);
    });

    it('ramStats and ramCombine: changed deltas summed where unique (times the scale), averaged where shared (mergekit ram_merge)', async () => {
      const b = Float32Array.from([0, 0, 0, 0, 1, 1]);
      const m = [Float32Array.from([0.5, 0.5, 0, 1e-6, 1, 3]), Float32Array.from([0, 0.25, 0, 0, 2, 2])];
      // element 0: only m0 (unique); 1: both (shared); 2: nobody; 3: m0 below epsilon; 4: only m1; 5: both
      const st = await k.ramStats(m, b, 1e-5);
      expect(st).toEqual({ active: [3, 3], unique: [1, 1], shared: [2, 2] });
      expectClose(await k.ramCombine(m, b, 1e-5, [1, 1]), [0.5, 0.375, 0, 0, 2, 1 + (2 + 1) / 2], 1e-7);
      expectClose(await k.ramCombine(m, b, 1e-5, [1.5, 2]), [0.75, 0.375, 0, 0, 3, 2.5], 1e-7);
      // Random data: the counts add up and the result matches the rule element by element.
      const eps = 0.04;
      const r = await k.ramStats(xs, base, eps);
      const scale = [1.1, 1.2, 1.3];
      const out = await k.ramCombine(xs, base, eps, scale);
      const wantCounts = { active: [0, 0, 0], unique: [0, 0, 0], shared: [0, 0, 0] };
      const want = Array.from(base, (bv, j) => {
        const d = xs.map((x) => Math.fround(x[j] - bv));
        const on = d.map((v) => Math.abs(v) > Math.fround(eps));
        const c = on.filter(Boolean).length;
        on.forEach((o, i) => {
          if (!o) return;
          wantCounts.active[i]++;
          if (c === 1) wantCounts.unique[i]++;
          else wantCounts.shared[i]++;
        });
        return bv + d.reduce((a, v, i) => a + (on[i] ? (c === 1 ? scale[i] * v : v / c) : 0), 0);
      });
      expect(r).toEqual(wantCounts);
      expect(wantCounts.unique[0]).toBeGreaterThan(0);
      expect(wantCounts.shared[0]).toBeGreaterThan(0);
      expectClose(out, want, 1e-6);
    });

    it('fusionImportance: |x - b| times the KL of the row softmaxes (+1e-8); thresholdMerge keeps score >= threshold', async () => {
      const imp = await k.fusionImportance(xs[0], base, COLS);
      const want = new Float64Array(N);
      for (let r = 0; r < ROWS; r++) {
        const row = (a: Float32Array) => Array.from(a.subarray(r * COLS, (r + 1) * COLS));
        const p = softmax(row(xs[0])).map((v) => v + 1e-8);
        const q = softmax(row(base)).map((v) => v + 1e-8);
        const kl = p.reduce((a, pv, c) => a + pv * Math.log(pv / q[c]), 0);
        for (let c = 0; c < COLS; c++) want[r * COLS + c] = Math.abs(xs[0][r * COLS + c] - base[r * COLS + c]) * kl;
      }
      expectClose(imp, want, 2e-4);
      const thr = imp[17];
      const { out, kept } = await k.thresholdMerge(xs[0], base, imp, thr);
      let n = 0;
      for (let j = 0; j < N; j++) {
        const take = imp[j] >= thr;
        n += +take;
        expect(out[j]).toBe(take ? Math.fround(base[j] + Math.fround(xs[0][j] - base[j])) : base[j]);
      }
      expect(kept).toBe(n);
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThan(N);
    });
  });
}
