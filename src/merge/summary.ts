import type { StageDiagnostics, TensorDiagnostics } from './diagnostics.js';

/**
 * Whole-stage totals from per-tensor diagnostics: norms combine as the root of summed squares
 * (the norm of the concatenated model), cosines from summed dot products (recovered per tensor as
 * cos * |a| * |b|), fractions and rescale factors weighted by element count.
 */
export function summarizeDiagnostics(tensors: readonly TensorDiagnostics[]): StageDiagnostics['totals'] {
  let numel = 0;
  const tvSq: Record<string, number> = {};
  const dots: Record<string, number> = {};
  const kept: Record<string, number> = {};
  const keptN: Record<string, number> = {};
  const rescale: Record<string, number> = {};
  const rescaleN: Record<string, number> = {};
  let conflict = 0;
  let mergedSq = 0;
  for (const t of tensors) {
    numel += t.numel;
    for (const [m, n] of Object.entries(t.taskVectorNorm)) tvSq[m] = (tvSq[m] ?? 0) + n * n;
    for (const [pair, c] of Object.entries(t.cosine)) {
      const [a, b] = pair.split('|');
      const na = t.taskVectorNorm[a] ?? 0;
      const nb = t.taskVectorNorm[b] ?? 0;
      if (Number.isFinite(c)) dots[pair] = (dots[pair] ?? 0) + c * na * nb;
      else dots[pair] = dots[pair] ?? 0;
    }
    for (const [m, f] of Object.entries(t.keptFraction)) {
      kept[m] = (kept[m] ?? 0) + f * t.numel;
      keptN[m] = (keptN[m] ?? 0) + t.numel;
    }
    for (const [m, f] of Object.entries(t.rescale)) {
      rescale[m] = (rescale[m] ?? 0) + f * t.numel;
      rescaleN[m] = (rescaleN[m] ?? 0) + t.numel;
    }
    conflict += t.signConflict * t.numel;
    mergedSq += t.mergedDeltaNorm * t.mergedDeltaNorm;
  }
  const taskVectorNorm = Object.fromEntries(Object.entries(tvSq).map(([m, s]) => [m, Math.sqrt(s)]));
  const cosine: Record<string, number> = {};
  for (const [pair, d] of Object.entries(dots)) {
    const [a, b] = pair.split('|');
    const den = (taskVectorNorm[a] ?? 0) * (taskVectorNorm[b] ?? 0);
    cosine[pair] = den > 0 ? d / den : 0;
  }
  const mergedDeltaNorm = Math.sqrt(mergedSq);
  return {
    numel,
    taskVectorNorm,
    cosine,
    signConflict: numel > 0 ? conflict / numel : 0,
    keptFraction: Object.fromEntries(Object.entries(kept).map(([m, s]) => [m, s / keptN[m]])),
    rescale: Object.fromEntries(Object.entries(rescale).map(([m, s]) => [m, s / rescaleN[m]])),
    mergedDeltaNorm,
    mergedDeltaRelToParent: Object.fromEntries(Object.entries(taskVectorNorm).map(([m, n]) => [m, n > 0 ? mergedDeltaNorm / n : Infinity])),
  };
}
