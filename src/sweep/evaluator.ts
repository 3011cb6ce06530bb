import type { EvalResult } from '../eval/evaluate.js';
import type { EvalConfig } from './experiment.js';

/**
 * The sweep's use of the built-in evaluator (src/eval): what a point's record keeps of an
 * evaluation, and the version that keys cached evaluations. The evaluator is imported when first
 * used, so planning a sweep does not load TensorFlow.js.
 */
/** Declarations and per-item outcomes are absent in evaluations cached by older code. */
export type EvalOutput = Pick<EvalResult, 'backend' | 'metrics' | 'samples' | 'timings'> & Partial<Pick<EvalResult, 'metricSpecs' | 'items'>>;

type Evaluator = typeof import('../eval/evaluate.js');

let mod: Promise<Evaluator> | null = null;

function load(): Promise<Evaluator> {
  mod ??= import('../eval/evaluate.js');
  return mod;
}

export async function evaluatorVersion(): Promise<string> {
  return (await load()).EVALUATOR_VERSION;
}

/**
 * One thread per evaluation: the sweep's worker processes (one per core) are its parallelism, and
 * threads started per task would cost more than they give.
 */
export async function runEvaluation(modelDir: string, cfg: EvalConfig, onTokens?: (n: number) => void): Promise<EvalOutput> {
  const { evaluateModel } = await load();
  const r = await evaluateModel(modelDir, { suites: cfg.suites, limit: cfg.limit ?? undefined, batchSize: cfg.batchSize, samples: cfg.samples, threads: 1, onTokens });
  return { backend: r.backend, metrics: r.metrics, metricSpecs: r.metricSpecs, items: r.items, samples: r.samples, timings: r.timings };
}
