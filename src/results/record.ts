import { z } from 'zod';
import { DiagnosticsEntry } from './diagnostics.js';
import { SuiteItems, SuiteMetricSpecs } from './metric.js';

/**
 * One evaluated point of a sweep: the row every report is drawn from. Appended as one JSON line
 * to reports/EXP/results.jsonl; results.csv and results.json are derived from those lines.
 */
export const SuiteMetrics = z.record(z.string(), z.number());

export const ShapeMismatch = z.object({
  stage: z.string(),
  model: z.string(),
  /** The model the shapes are compared with (the base, else the stage's first model). */
  reference: z.string(),
  tensors: z.array(z.object({ tensor: z.string(), shape: z.array(z.number().int()), referenceShape: z.array(z.number().int()) })),
});

export const Sample = z.object({
  suite: z.string(),
  id: z.string(),
  prompt: z.string(),
  output: z.string(),
  correct: z.boolean().optional(),
});

/**
 * Who scored a record, when it was not the built-in evaluator (whose records say so in `backend`
 * alone): the backend, the key its cache entries carry, the command template of the experiment
 * file and the command line as run, the server (pid, port, GPUs, log) or lm_eval's version.
 */
export const ScoredBy = z.object({
  backend: z.enum(['builtin', 'command', 'openai', 'lm-eval']),
  /** What evaluation cache keys carry (src/eval/backends/config.ts backendKey). */
  key: z.string(),
  /** The command as the experiment file gives it (`serve`, `cmd` or lm-eval's `command`). */
  template: z.string().optional(),
  /** The command line as run, placeholders filled. */
  command: z.string().optional(),
  endpoint: z.string().optional(),
  /** The `model` name the server was asked for. */
  servedModel: z.string().optional(),
  server: z.object({ pid: z.number().int(), port: z.number().int(), gpus: z.string(), logFile: z.string() }).optional(),
  /** CUDA_VISIBLE_DEVICES and the log of an lm_eval or delegate run. */
  gpus: z.string().optional(),
  logFile: z.string().optional(),
  /** lm-eval: the folder its --output_path wrote (results and every sample). */
  outputDir: z.string().optional(),
  lmEvalVersion: z.string().optional(),
  /** Requests that were retried (HTTP 5xx, 429, dropped connections). */
  retries: z.number().int().optional(),
});
export type ScoredBy = z.infer<typeof ScoredBy>;

export const ResultRecord = z.object({
  experiment: z.string(),
  /** Stable id of the point within the experiment (same across runs with the same file). */
  point: z.string(),
  /** 'base' | 'parent' reference models, or 'merge' for a swept point. */
  role: z.enum(['base', 'parent', 'merge']),
  /** Named variant (e.g. 'chained', 'single_dare_ties'); for references the model's name. */
  variant: z.string(),
  /** Values of the sweep axes at this point (density, weight, rescale, ...). */
  axes: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])),
  seed: z.number().int().nullable(),
  /** The resolved multi-stage recipe that was merged (YAML text); null for references. */
  recipe: z.string().nullable(),
  backend: z.string(),
  /** Which backend, command and server scored the point; absent for the built-in evaluator. */
  scoredBy: ScoredBy.optional(),
  engineVersion: z.string(),
  status: z.enum(['ok', 'failed']),
  error: z.string().optional(),
  /** metrics[suite][metric], e.g. metrics.math.exact_match_strict, metrics.lm.perplexity. */
  metrics: z.record(z.string(), SuiteMetrics),
  /** What each metric is (direction, role, aggregation), as its suite declares it; absent in records written before suites declared their metrics. */
  metricSpecs: SuiteMetricSpecs.optional(),
  /** Per-item outcomes by suite, so two points can be compared on the same items. */
  items: z.record(z.string(), SuiteItems).optional(),
  timings: z.record(z.string(), z.number()),
  /** Per-stage merge diagnostics, then a chained point's final-vs-parents entry; empty for references. */
  diagnostics: z.array(DiagnosticsEntry),
  samples: z.array(Sample),
  /**
   * Models merged although some of their tensors differ in shape from the stage's reference model
   * (the experiment's allow_crimes, mergekit's --allow-crimes): each was left out of those tensors
   * (embeddings: cropped to the common block). Absent when there were none.
   */
  shapeMismatches: z.array(ShapeMismatch).optional(),
});
export type ResultRecord = z.infer<typeof ResultRecord>;
export type Sample = z.infer<typeof Sample>;
