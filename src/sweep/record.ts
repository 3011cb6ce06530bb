import { ENGINE_VERSION } from '../merge/engine.js';
import { ResultRecord, type ScoredBy } from '../results/record.js';
import { backendKey, type EvalBackendConfig } from '../eval/backends/config.js';
import { headlineMetric } from '../results/metric.js';
import { CacheLayout, readJson, readOptional } from './cache.js';
import type { Plan, PointNode } from './plan.js';
import type { EvalFile, PointDiagFile, StageDiagFile } from './tasks.js';

/**
 * A point's result record, made from cache files only, so a resumed run, a re-attached Slurm run
 * and an uninterrupted local run write the same bytes (timings aside).
 */

function sanitizeMetrics(m: Record<string, Record<string, number | null>>): Record<string, Record<string, number>> {
  // JSON has no NaN: a metric over zero items comes back as null and is left out of the record.
  const out: Record<string, Record<string, number>> = {};
  for (const [suite, ms] of Object.entries(m)) {
    out[suite] = {};
    for (const [k, v] of Object.entries(ms)) if (typeof v === 'number' && Number.isFinite(v)) out[suite][k] = v;
  }
  return out;
}

export async function assembleRecord(plan: Plan, p: PointNode, layout: CacheLayout, failure: string | null, backend: string): Promise<ResultRecord> {
  const exp = plan.experiment;
  const diagnostics: unknown[] = [];
  const timings: Record<string, number> = {};
  let mergeSeconds = 0;
  // Every file is checked against its checksum as it is read (a failed point may lack some).
  for (const k of p.stages) {
    const d = await readOptional<StageDiagFile>(layout.diagFile(k));
    if (d) {
      diagnostics.push(d.diagnostics);
      mergeSeconds += d.seconds;
    }
  }
  if (p.stages.length) timings.merge_s = mergeSeconds;
  const pd = p.pointDiag ? await readOptional<PointDiagFile>(layout.pointDiagFile(p.pointDiag.key)) : null;
  if (pd) {
    diagnostics.push(pd.diagnostics);
    timings.point_diagnostics_s = pd.seconds;
  }
  const base = {
    experiment: exp.name,
    point: p.id,
    role: p.role,
    variant: p.variant,
    axes: p.axes,
    seed: p.seed,
    recipe: p.recipe,
    engineVersion: ENGINE_VERSION,
    diagnostics,
    ...(p.shapeMismatches.length ? { shapeMismatches: p.shapeMismatches } : {}),
  };
  if (failure === null) {
    const e = await readJson<EvalFile>(layout.evalFile(p.evalKey));
    timings.eval_s = e.seconds;
    for (const [k, v] of Object.entries(e.result.timings ?? {})) timings[`eval_${k}_s`] = v;
    return ResultRecord.parse({ ...base, backend: e.result.backend, scoredBy: e.result.provenance, status: 'ok', metrics: sanitizeMetrics(e.result.metrics), metricSpecs: e.result.metricSpecs, items: e.result.items, timings, samples: e.result.samples });
  }
  return ResultRecord.parse({ ...base, backend, scoredBy: intendedScorer(exp.eval.backend), status: 'failed', error: failure, metrics: {}, timings, samples: [] });
}

/** Who was to score a point that failed: the backend and its command template (nothing ran to say more). */
function intendedScorer(b: EvalBackendConfig): ScoredBy | undefined {
  if (b.type === 'builtin') return undefined;
  const template = b.type === 'command' ? b.cmd : b.type === 'lm-eval' ? b.command : b.serve;
  return { backend: b.type, key: backendKey(b), ...(template !== undefined ? { template } : {}), ...(b.type === 'openai' && b.endpoint ? { endpoint: b.endpoint } : {}) };
}

/** The progress line of a recorded point: `done ID: suite=main metric ...` or `FAILED ID: reason`. */
export function recordLine(rec: ResultRecord): string {
  if (rec.status === 'failed') return `FAILED ${rec.point}: ${(rec.error ?? '').split('\n')[0]}`;
  const summary = Object.entries(rec.metrics)
    .map(([s, ms]) => {
      const main = ms[headlineMetric(rec.metricSpecs?.[s]) ?? ''];
      return main === undefined ? null : `${s}=${Number(main).toFixed(3)}`;
    })
    .filter(Boolean)
    .join(' ');
  return `done ${rec.point}${summary ? `: ${summary}` : ''}`;
}
