/**
 * Diagnostics for methods whose kernels do not accumulate them on the way (the newer mergekit
 * methods): one more pass, the Gram of every task vector and of the merged delta against the base.
 */
import type { TensorDiagnostics } from './diagnostics.js';
import type { Kernels } from '../kernels/types.js';
import { buildDiagnostics } from './common.js';

export interface AgainstBase {
  tensor: string;
  kernels: Kernels;
  base: Float32Array;
  refs: string[];
  models: Float32Array[];
  out: Float32Array;
  /** Elements of each task vector the method used (all of them when omitted). */
  kept?: number[];
  /** Per model: the factor its kept delta was scaled by (1 when omitted). */
  rescale?: number[];
}

export async function diagnoseAgainstBase(a: AgainstBase): Promise<TensorDiagnostics> {
  const n = a.models.length;
  const N = a.base.length;
  const g = await a.kernels.gram([...a.models, a.out], a.base);
  const dot: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) dot.push(g.dot[i * (n + 1) + j]);
  return buildDiagnostics({
    tensor: a.tensor,
    refs: a.refs,
    numel: N,
    gram: { l1: g.l1.slice(0, n), l2sq: g.l2sq.slice(0, n), dot },
    kept: a.kept ?? a.models.map(() => N),
    rescale: a.rescale ?? a.models.map(() => 1),
    signConflicts: 0,
    mergedDeltaL2sq: g.l2sq[n],
  });
}
