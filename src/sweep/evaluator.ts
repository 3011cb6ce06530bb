import type { EvalResult } from '../eval/evaluate.js';
import type { BackendRunOptions, Provenance } from '../eval/backends/run.js';
import type { EvalConfig } from './experiment.js';
import type { Sample } from '../results/record.js';

/**
 * The sweep's use of the built-in evaluator (src/eval): what a point's record keeps of an
 * evaluation, and the version that keys cached evaluations. The evaluator is imported when first
 * used, so planning a sweep does not load TensorFlow.js.
 */
/**
 * Declarations and per-item outcomes are absent in evaluations cached by older code; provenance
 * (who scored it) in those of the built-in evaluator, whose `backend` says it.
 */
export type EvalOutput = Pick<EvalResult, 'backend' | 'metrics' | 'timings'> & Partial<Pick<EvalResult, 'metricSpecs' | 'items'>> & { samples: Sample[]; provenance?: Provenance };

type Evaluator = typeof import('../eval/evaluate.js');

let mod: Promise<Evaluator> | null = null;

function load(): Promise<Evaluator> {
  mod ??= import('../eval/evaluate.js');
  return mod;
}

export async function evaluatorVersion(): Promise<string> {
  return (await load()).EVALUATOR_VERSION;
}

/** Where an evaluation by another backend runs: the GPUs and port it was given, its log, pid and output folders. */
export type ExternalRunOptions = Pick<BackendRunOptions, 'gpus' | 'port' | 'logFile' | 'pidDir' | 'workDir' | 'log'>;

/**
 * A built-in evaluation takes one thread while every worker process (one per core) is busy: they
 * are the sweep's parallelism. The fast runner's threads are 'elastic': when the parent lends
 * this worker an idle CPU slot (`setEvalThreads`), the running evaluation takes a second thread at
 * its next model call. An evaluation by another backend waits on its own program and is lent none.
 */
export async function runEvaluation(modelDir: string, cfg: EvalConfig, where: ExternalRunOptions = {}, onTokens?: (n: number) => void): Promise<EvalOutput> {
  if (cfg.backend.type !== 'builtin') {
    const { evaluateWithBackend } = await import('../eval/backends/run.js');
    const r = await evaluateWithBackend(modelDir, cfg, where);
    return { backend: r.backend, metrics: r.metrics, metricSpecs: r.metricSpecs, items: r.items, samples: r.samples, timings: r.timings, provenance: r.provenance };
  }
  const { evaluateModel } = await load();
  const r = await evaluateModel(modelDir, { suites: cfg.suites, limit: cfg.limit ?? undefined, batchSize: cfg.batchSize, samples: cfg.samples, threads: 'elastic', onTokens });
  return { backend: r.backend, metrics: r.metrics, metricSpecs: r.metricSpecs, items: r.items, samples: r.samples, timings: r.timings };
}

/** Threads this process's evaluations may use from now on, the running one included. */
export async function setEvalThreads(threads: number): Promise<void> {
  const { setThreadBudget } = await import('../eval/runner-typed/pool.js');
  setThreadBudget(threads);
}
