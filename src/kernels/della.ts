/**
 * della's magnitude-ranked sampling (shared by both backends so masks agree bit for bit):
 * within each row (the last dimension; a 1-D tensor is one row) rank |d| ascending, ties by index;
 * p = (rho - eps) + 2 eps (r - r_min)/(r_max - r_min), keep when the element's uniform u < p.
 * A row of one element has r_max = r_min; mergekit divides 0 by 0 there, we use p = rho.
 */
import { fillUniform } from './rng.js';
import { rowRanks } from './select.js';
import type { DellaMaskResult, RngKey } from './types.js';

export function dellaMaskFromDelta(
  d: Float32Array,
  rowLen: number,
  rho: number,
  eps: number,
  key: RngKey,
  inverseProbability: boolean,
): DellaMaskResult {
  const N = d.length;
  const ranks = new Uint32Array(N);
  rowRanks(d, rowLen, ranks);
  const mask: Uint8Array | Float32Array = inverseProbability ? new Float32Array(N) : new Uint8Array(N);
  const u = new Float32Array(rowLen);
  const lowP = rho - eps;
  const step = rowLen > 1 ? (2 * eps) / (rowLen - 1) : 0;
  let kept = 0;
  let sumInv = 0;
  for (let r0 = 0; r0 < N; r0 += rowLen) {
    fillUniform(key, u, r0);
    for (let j = 0; j < rowLen; j++) {
      const p = rowLen > 1 ? lowP + step * ranks[r0 + j] : rho;
      if (u[j] < p) {
        kept++;
        const inv = 1 / p;
        sumInv += inv;
        mask[r0 + j] = inverseProbability ? inv : 1;
      }
    }
  }
  return { mask, kept, meanInvP: kept > 0 ? sumInv / kept : 1 };
}
