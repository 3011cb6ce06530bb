import { describe, expect, it } from 'vitest';
import { kthLargestAbs, rankBandMask, rowRanks, topBoundary } from '../../src/kernels/select.js';
import { lcg, randn } from './backends.js';

/** Reference: indices in ascending order of |x|, at equal |x| higher index first (the documented rule). */
function ascendingOrder(x: Float32Array): number[] {
  const idx = Array.from(x, (_, i) => i);
  return idx.sort((a, b) => Math.abs(x[a]) - Math.abs(x[b]) || b - a);
}

function tiesData(n: number, seed: number): Float32Array {
  const r = lcg(seed);
  // Few distinct magnitudes, both signs and both zeros: ties everywhere.
  return Float32Array.from({ length: n }, () => {
    const v = Math.floor(r() * 7) - 3;
    return v === 0 && r() < 0.5 ? -0 : v * 0.25;
  });
}

describe('radix selection', () => {
  it('finds the k-th largest magnitude exactly', () => {
    for (const x of [randn(5000, 1), tiesData(3000, 2), Float32Array.from([0, -0, 1e-45, -3, 3, 2])]) {
      const sorted = Array.from(x, Math.abs).sort((a, b) => b - a);
      for (const k of [1, 2, Math.floor(x.length / 3), x.length - 1, x.length]) {
        expect(kthLargestAbs(x, k)).toBe(Math.fround(sorted[k - 1]));
      }
    }
    expect(() => kthLargestAbs(new Float32Array(3), 0)).toThrow(RangeError);
  });

  it('keeps exactly the sorted band [lo, hi) with ties broken by index', () => {
    for (const x of [randn(2000, 3), tiesData(2000, 4), new Float32Array(100)]) {
      const order = ascendingOrder(x);
      const N = x.length;
      for (const [lo, hi] of [[0, N], [N - 1, N], [N - 300, N], [123, N - 77], [500, 500], [0, 10], [0, 0]]) {
        if (!(0 <= lo && lo <= hi && hi <= N)) continue;
        const want = new Uint8Array(N);
        for (let p = lo; p < hi; p++) want[order[p]] = 1;
        const got = rankBandMask(x, lo, hi);
        expect(Array.from(got)).toEqual(Array.from(want));
      }
    }
  });

  it('top-k keeps the lower indices among equal magnitudes', () => {
    const x = Float32Array.from([1, -2, 2, 2, -1, 0]);
    // |x|: 1 2 2 2 1 0; the two largest of the three 2s are indices 1 and 2.
    expect(Array.from(rankBandMask(x, 4, 6))).toEqual([0, 1, 1, 0, 0, 0]);
    expect(topBoundary(x, 2)).toEqual({ bits: new Uint32Array(Float32Array.of(2).buffer)[0], ties: 2 });
  });

  it('ranks within rows, ties by index', () => {
    const x = Float32Array.from([3, -1, 1, 0, /* row 2 */ 5, 5, -5, 4]);
    const r = new Uint32Array(8);
    rowRanks(x, 4, r);
    expect(Array.from(r)).toEqual([3, 1, 2, 0, 1, 2, 3, 0]);
    const big = randn(4096 * 3, 5);
    const rb = new Uint32Array(big.length);
    rowRanks(big, 4096, rb);
    for (let row = 0; row < 3; row++) {
      const seg = big.subarray(row * 4096, (row + 1) * 4096);
      const idx = Array.from(seg, (_, i) => i).sort((a, b) => Math.abs(seg[a]) - Math.abs(seg[b]) || a - b);
      idx.forEach((j, pos) => expect(rb[row * 4096 + j]).toBe(pos));
    }
  });
});
