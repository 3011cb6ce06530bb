import type { EvalResult } from '../eval/evaluate.js';
import type { EvalConfig } from './experiment.js';

/**
 * The sweep's use of the built-in evaluator (src/eval): what a point's record keeps of an
 * evaluation, and the version that keys cached evaluations. The evaluator is imported when first
 * used, so planning a sweep does not load TensorFlow.js.
 */
export type EvalOutput = Pick<EvalResult, 'backend' | 'metrics' | 'samples' | 'timings'>;

type Evaluator = typeof import('../eval/evaluate.js');

let mod: Promise<Evaluator> | null = null;

function load(): Promise<Evaluator> {
  mod ??= import('../eval/evaluate.js');
  return mod;
}

export async function evaluatorVersion(): Promise<string> {
  return (await load()).EVALUATOR_VERSION;
}

export async function runEvaluation(modelDir: string, cfg: EvalConfig): Promise<EvalOutput> {
  const { evaluateModel } = await load();
  const r = await evaluateModel(modelDir, { suites: cfg.suites, limit: cfg.limit ?? undefined, batchSize: cfg.batchSize, samples: cfg.samples });
  return { backend: r.backend, metrics: r.metrics, samples: r.samples, timings: r.timings };
}
