import type { EvalConfig } from './experiment.js';

/**
 * The sweep's view of the built-in evaluator (src/eval, another module): what a point's record
 * needs from an evaluation, and the version that keys cached evaluations.
 */
export interface EvalOutput {
  model?: string;
  backend: string;
  metrics: Record<string, Record<string, number>>;
  samples: Array<{ suite: string; id: string; prompt: string; output: string; correct?: boolean }>;
  timings?: Record<string, number>;
}

interface EvaluatorModule {
  evaluateModel(modelDir: string, opts: { suites: string[]; limit?: number; batchSize?: number; samples?: number; threads?: number; onTokens?: (n: number) => void }): Promise<EvalOutput>;
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

/**
 * One thread per evaluation: the sweep's worker processes (one per core) are its parallelism, and
 * threads started per task would cost more than they give.
 */
export async function runEvaluation(modelDir: string, cfg: EvalConfig, onTokens?: (n: number) => void): Promise<EvalOutput> {
  const m = await load();
  const r = await m.evaluateModel(modelDir, { suites: cfg.suites, limit: cfg.limit ?? undefined, batchSize: cfg.batchSize, samples: cfg.samples, threads: 1, onTokens });
  return { backend: r.backend, metrics: r.metrics, samples: r.samples, timings: r.timings ?? {} };
}
