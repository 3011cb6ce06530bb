import { z } from 'zod';

/**
 * The diagnostics a record carries, as JSON: one entry per merged stage (StageDiagnostics,
 * src/merge/diagnostics.ts) and, for a chained point, one comparing the final model with the
 * original parents (FinalVsParents, src/sweep/pointDiagnostics.ts). JSON writes Infinity and NaN
 * as null, so every measured number may be null here.
 */

/** A measured number; null where the engine measured Infinity or NaN (a parent with a zero task vector). */
const Measured = z.number().nullable();
/** Keyed by model reference, or by `a|b` for pairs. */
const PerModel = z.record(z.string(), Measured);

/** What both entry kinds measure about task vectors against the base. */
const TaskVectorStats = {
  numel: z.number().int().nonnegative(),
  taskVectorNorm: PerModel,
  cosine: PerModel,
  signConflict: Measured,
  mergedDeltaNorm: Measured,
  mergedDeltaRelToParent: PerModel,
};

const MergeStats = z.object({ ...TaskVectorStats, keptFraction: PerModel, rescale: PerModel });

const Where = { tensor: z.string(), layer: z.number().int().nullable() };

export const StageDiagnosticsEntry = z.object({
  stage: z.string(),
  method: z.string(),
  rescaleRule: z.string(),
  seed: z.number().int(),
  backend: z.string(),
  tensors: z.array(MergeStats.extend(Where)),
  totals: MergeStats,
  warnings: z.array(z.string()),
});
export type StageDiagnosticsEntry = z.infer<typeof StageDiagnosticsEntry>;

const ChainStats = z.object({ ...TaskVectorStats, retained: PerModel, signAgreement: PerModel });

export const FinalVsParentsEntry = z.object({
  kind: z.literal('final-vs-parents'),
  stage: z.literal('final vs parents'),
  method: z.literal('final-vs-parents'),
  rescaleRule: z.literal('none'),
  base: z.string(),
  parents: z.array(z.string()),
  tensors: z.array(ChainStats.extend(Where)),
  layers: z.array(ChainStats.extend({ layer: Where.layer })),
  totals: ChainStats,
  warnings: z.array(z.string()),
});
export type FinalVsParentsEntry = z.infer<typeof FinalVsParentsEntry>;

export const DiagnosticsEntry = z.union([FinalVsParentsEntry, StageDiagnosticsEntry]);
export type DiagnosticsEntry = z.infer<typeof DiagnosticsEntry>;
