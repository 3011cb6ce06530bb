import type { EvalConfig } from './experiment.js';
import type { SuiteItems, SuiteMetricSpecs } from '../results/metric.js';

/**
 * The sweep's view of the built-in evaluator (src/eval, another module): what a point's record
 * needs from an evaluation, and the version that keys cached evaluations.
 */
export interface EvalOutput {
  model?: string;
  backend: string;
  metrics: Record<string, Record<string, number>>;
  /** What each metric is and the per-item outcomes behind it (absent in evaluations cached by older code). */
  metricSpecs?: SuiteMetricSpecs;
  items?: Record<string, SuiteItems>;
  samples: Array<{ suite: string; id: string; prompt: string; output: string; correct?: boolean }>;
  timings?: Record<string, number>;
}

interface EvaluatorModule {
  evaluateModel(modelDir: string, opts: { suites: string[]; limit?: number; batchSize?: number; samples?: number }): Promise<EvalOutput>;
  EVALUATOR_VERSION: string;
}

let mod: Promise<EvaluatorModule> | null = null;

async function load(): Promise<EvaluatorModule> {
  mod ??= import('../eval/evaluate.js') as Promise<unknown> as Promise<EvaluatorModule>;
  return mod;
}

export async function evaluatorVersion(): Promise<string> {
  return (await load()).EVALUATOR_VERSION;
}

export async function runEvaluation(modelDir: string, cfg: EvalConfig): Promise<EvalOutput> {
  const m = await load();
  const r = await m.evaluateModel(modelDir, { suites: cfg.suites, limit: cfg.limit ?? undefined, batchSize: cfg.batchSize, samples: cfg.samples });
  return { backend: r.backend, metrics: r.metrics, metricSpecs: r.metricSpecs, items: r.items, samples: r.samples, timings: r.timings ?? {} };
}
