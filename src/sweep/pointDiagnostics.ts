import { openCheckpoint, type Checkpoint } from '../checkpoint/reader.js';
import { layerIndex } from '../checkpoint/names.js';

/**
 * The final model of a chained merge against the ORIGINAL parents (math, chat) rather than against
 * each stage's own inputs: ||F - B|| relative to each ||P_i - B||, the cosine between F - B and each
 * P_i - B, and how much of each parent's task vector survives (the least-squares coefficient
 * <F - B, P_i - B> / ||P_i - B||^2: 1 = fully kept, 0 = lost). Per tensor, per layer and in total.
 *
 * The entry is shaped like a StageDiagnostics (stage, method, tensors, totals, with the same field
 * names), so report code that reads stage diagnostics shows it as one more column; `kind` tells it
 * apart. Per-stage diagnostics alone cannot say which ORIGINAL skill the chain lost, because stage
 * 2 sees stage 1's output as an opaque parent.
 */

export interface FinalVsParentsStats {
  numel: number;
  /** ||P_i - B|| per parent. */
  taskVectorNorm: Record<string, number>;
  /** cos(F - B, P_i - B) as `final|P`, and between parents `P|Q`. */
  cosine: Record<string, number>;
  /** Fraction of elements where two parents' deltas are non-zero with opposite signs. */
  signConflict: number;
  /** ||F - B||. */
  mergedDeltaNorm: number;
  /** ||F - B|| / ||P_i - B|| (null in JSON when the parent's delta is zero). */
  mergedDeltaRelToParent: Record<string, number>;
  /** <F - B, P_i - B> / ||P_i - B||^2. */
  retained: Record<string, number>;
  /** Fraction of the elements where P_i - B is non-zero at which F - B has the same sign. */
  signAgreement: Record<string, number>;
}

export interface FinalVsParents {
  kind: 'final-vs-parents';
  stage: 'final vs parents';
  method: 'final-vs-parents';
  rescaleRule: 'none';
  base: string;
  parents: string[];
  tensors: Array<FinalVsParentsStats & { tensor: string; layer: number | null }>;
  layers: Array<FinalVsParentsStats & { layer: number | null }>;
  totals: FinalVsParentsStats;
  warnings: string[];
}

interface Acc {
  numel: number;
  ff: number;
  pp: number[];
  fp: number[];
  /** Pairwise parent dots, i < j flattened. */
  pq: number[];
  conflicts: number;
  agree: number[];
  nonzero: number[];
}

function newAcc(n: number): Acc {
  return { numel: 0, ff: 0, pp: Array(n).fill(0), fp: Array(n).fill(0), pq: Array((n * (n - 1)) / 2).fill(0), conflicts: 0, agree: Array(n).fill(0), nonzero: Array(n).fill(0) };
}

function addAcc(into: Acc, a: Acc): void {
  into.numel += a.numel;
  into.ff += a.ff;
  into.conflicts += a.conflicts;
  for (let i = 0; i < a.pp.length; i++) {
    into.pp[i] += a.pp[i];
    into.fp[i] += a.fp[i];
    into.agree[i] += a.agree[i];
    into.nonzero[i] += a.nonzero[i];
  }
  for (let k = 0; k < a.pq.length; k++) into.pq[k] += a.pq[k];
}

function stats(a: Acc, names: string[]): FinalVsParentsStats {
  const fNorm = Math.sqrt(a.ff);
  const out: FinalVsParentsStats = {
    numel: a.numel,
    taskVectorNorm: {},
    cosine: {},
    signConflict: a.numel ? a.conflicts / a.numel : 0,
    mergedDeltaNorm: fNorm,
    mergedDeltaRelToParent: {},
    retained: {},
    signAgreement: {},
  };
  names.forEach((n, i) => {
    const pNorm = Math.sqrt(a.pp[i]);
    out.taskVectorNorm[n] = pNorm;
    out.cosine[`final|${n}`] = fNorm > 0 && pNorm > 0 ? a.fp[i] / (fNorm * pNorm) : 0;
    out.mergedDeltaRelToParent[n] = pNorm > 0 ? fNorm / pNorm : Infinity;
    out.retained[n] = a.pp[i] > 0 ? a.fp[i] / a.pp[i] : 0;
    out.signAgreement[n] = a.nonzero[i] ? a.agree[i] / a.nonzero[i] : 0;
  });
  let k = 0;
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++, k++) {
      const d = Math.sqrt(a.pp[i]) * Math.sqrt(a.pp[j]);
      out.cosine[`${names[i]}|${names[j]}`] = d > 0 ? a.pq[k] / d : 0;
    }
  }
  return out;
}

function accumulate(f: Float32Array, b: Float32Array, ps: Float32Array[]): Acc {
  const n = ps.length;
  const a = newAcc(n);
  a.numel = b.length;
  const dp = new Float64Array(n);
  for (let e = 0; e < b.length; e++) {
    const be = b[e];
    const df = f[e] - be;
    a.ff += df * df;
    let pos = false;
    let neg = false;
    for (let i = 0; i < n; i++) {
      const d = ps[i][e] - be;
      dp[i] = d;
      a.pp[i] += d * d;
      a.fp[i] += df * d;
      if (d !== 0) {
        a.nonzero[i]++;
        if ((d > 0 && df > 0) || (d < 0 && df < 0)) a.agree[i]++;
        if (d > 0) pos = true;
        else neg = true;
      }
    }
    if (pos && neg) a.conflicts++;
    let k = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++, k++) a.pq[k] += dp[i] * dp[j];
  }
  return a;
}

export async function computeFinalVsParents(finalDir: string, base: { name: string; dir: string }, parents: Array<{ name: string; dir: string }>): Promise<FinalVsParents> {
  const opened: Checkpoint[] = [];
  const open = async (d: string) => {
    const c = await openCheckpoint(d);
    opened.push(c);
    return c;
  };
  try {
    const F = await open(finalDir);
    const B = await open(base.dir);
    const P = await Promise.all(parents.map((p) => open(p.dir)));
    const names = parents.map((p) => p.name);
    const warnings: string[] = [];
    const tensors: FinalVsParents['tensors'] = [];
    const byLayer = new Map<number | null, Acc>();
    const total = newAcc(names.length);
    for (const t of F.tensorNames()) {
      const info = F.info(t);
      if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) continue;
      const same = (c: Checkpoint) => c.has(t) && c.info(t).numel === info.numel && c.info(t).shape.join(',') === info.shape.join(',');
      if (!same(B) || !P.every(same)) {
        warnings.push(`tensor ${t}: skipped (absent or shaped differently in the base or a parent)`);
        continue;
      }
      const f = await F.readF32(t);
      const b = await B.readF32(t);
      const ps = await Promise.all(P.map((c) => c.readF32(t)));
      const acc = accumulate(f, b, ps);
      const layer = layerIndex(t);
      tensors.push({ tensor: t, layer, ...stats(acc, names) });
      let la = byLayer.get(layer);
      if (!la) byLayer.set(layer, (la = newAcc(names.length)));
      addAcc(la, acc);
      addAcc(total, acc);
    }
    const layers = [...byLayer.entries()]
      .sort(([a], [b]) => (a === null ? -1 : b === null ? 1 : a - b))
      .map(([layer, acc]) => ({ layer, ...stats(acc, names) }));
    return {
      kind: 'final-vs-parents',
      stage: 'final vs parents',
      method: 'final-vs-parents',
      rescaleRule: 'none',
      base: base.name,
      parents: names,
      tensors,
      layers,
      totals: stats(total, names),
      warnings,
    };
  } finally {
    await Promise.all(opened.map((c) => c.close()));
  }
}
