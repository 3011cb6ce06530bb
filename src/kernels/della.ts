/**
 * della's magnitude-ranked sampling (shared by both backends so masks agree bit for bit):
 * within each row (the last dimension; a 1-D tensor is one row) rank |d| ascending, ties by index;
 * p = (rho - eps) + 2 eps (r - r_min)/(r_max - r_min), keep when the element's uniform u < p.
 * A row of one element has r_max = r_min; mergekit divides 0 by 0 there, we use p = rho.
 *
 * Work is organised in groups of whole rows (about BLOCK elements each) with one partial sum per
 * group, so thread splits on group boundaries give bit-identical diagnostics too.
 */
import { BLOCK } from './loops.js';
import { fillUniform } from './rng.js';
import { rowRanks } from './select.js';
import type { DellaMaskResult, RngKey } from './types.js';

export function dellaRowsPerGroup(rowLen: number): number {
  return Math.max(1, Math.floor(BLOCK / rowLen));
}

export function dellaGroupCount(n: number, rowLen: number): number {
  return Math.ceil(n / rowLen / dellaRowsPerGroup(rowLen));
}

/** Rows [rowStart, rowEnd) (group aligned); partials[2g] = kept, partials[2g+1] = sum of 1/p over kept. */
export function dellaRowsRange(
  d: Float32Array,
  rowLen: number,
  rho: number,
  eps: number,
  key: RngKey,
  inverseProbability: boolean,
  rowStart: number,
  rowEnd: number,
  mask: Uint8Array | Float32Array,
  partials: Float64Array,
): void {
  const G = dellaRowsPerGroup(rowLen);
  const ranks = new Uint32Array(rowLen);
  const scratch = new Float64Array(rowLen);
  const u = new Float32Array(rowLen);
  const lowP = rho - eps;
  const step = rowLen > 1 ? (2 * eps) / (rowLen - 1) : 0;
  for (let g0 = rowStart; g0 < rowEnd; g0 += G) {
    let kept = 0;
    let sumInv = 0;
    for (let row = g0; row < Math.min(g0 + G, rowEnd); row++) {
      const r0 = row * rowLen;
      rowRanks(d.subarray(r0, r0 + rowLen), rowLen, ranks, scratch);
      fillUniform(key, u, r0);
      for (let j = 0; j < rowLen; j++) {
        const p = rowLen > 1 ? lowP + step * ranks[j] : rho;
        if (u[j] < p) {
          kept++;
          const inv = 1 / p;
          sumInv += inv;
          mask[r0 + j] = inverseProbability ? inv : 1;
        } else {
          mask[r0 + j] = 0;
        }
      }
    }
    const gi = Math.floor(g0 / G);
    partials[2 * gi] = kept;
    partials[2 * gi + 1] = sumInv;
  }
}

export function dellaResult(mask: Uint8Array | Float32Array, partials: Float64Array): DellaMaskResult {
  let kept = 0;
  let sumInv = 0;
  for (let g = 0; g < partials.length; g += 2) {
    kept += partials[g];
    sumInv += partials[g + 1];
  }
  return { mask, kept, meanInvP: kept > 0 ? sumInv / kept : 1 };
}

export function dellaMaskFromDelta(
  d: Float32Array,
  rowLen: number,
  rho: number,
  eps: number,
  key: RngKey,
  inverseProbability: boolean,
): DellaMaskResult {
  const N = d.length;
  if (rowLen <= 0 || N % rowLen !== 0) throw new RangeError(`della: ${N} elements do not split into rows of ${rowLen}`);
  const mask: Uint8Array | Float32Array = inverseProbability ? new Float32Array(N) : new Uint8Array(N);
  const partials = new Float64Array(2 * dellaGroupCount(N, rowLen));
  dellaRowsRange(d, rowLen, rho, eps, key, inverseProbability, 0, N / rowLen, mask, partials);
  return dellaResult(mask, partials);
}
