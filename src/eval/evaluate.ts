/**
 * The evaluator: loads suites (evals/NAME.yaml + JSONL), asks a backend for generations or
 * scores, extracts and scores answers, and returns one typed result.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../util/errors.js';
import { codeDigest } from '../util/codeDigest.js';
import { applyFilter } from './filters.js';
import { exactMatch, ifevalAggregate, ifevalItems, ifevalVerdict, perplexityItems, perplexityMetrics, type IfevalVerdict } from './metrics.js';
import { suiteMetricSpecs } from './declare.js';
import type { MetricSpec, SuiteItems } from '../results/metric.js';
import { isDegenerate } from './degenerate.js';
import { loadTask, selectRows, type LoadedTask, type Row } from './task.js';
import { renderTemplate } from './template.js';
import { cutAtStop, type ChatMessage, type EvalBackend, type Generation } from './backends/types.js';
import { DelegateBackend } from './backends/delegate.js';
import { HttpBackend } from './backends/http.js';
import type { FastThreads } from './runner-typed/runner.js';

export interface EvalSample { suite: string; id: string; prompt: string; output: string; correct: boolean }
export interface EvalResult {
  model: string;
  backend: string;
  /** metrics[suite][metric], e.g. metrics.math.exact_match_strict; flatten with `flattenMetrics`. */
  metrics: Record<string, Record<string, number>>;
  /** metricSpecs[suite][metric]: what each metric is, as its suite declares it. */
  metricSpecs: Record<string, Record<string, MetricSpec>>;
  /** Per-item outcomes by suite, so results of two models can be compared on the same items. */
  items: Record<string, SuiteItems>;
  samples: EvalSample[];
  /** Seconds: `load`, one entry per suite, `total`. */
  timings: Record<string, number>;
}

export interface EvalOptions {
  suites: string[];
  /** First N items of each suite (overrides a yaml's own `limit`). */
  limit?: number;
  batchSize?: number;
  /** Samples kept per suite in the result (default 5). */
  samples?: number;
  /** Where suite yamls live (default: `evals/` of the repository). */
  evalsDir?: string;
  /** Run suites through `cmd {model} {task_file}` instead of the built-in zoo runtime. */
  delegateCmd?: string;
  /** Run suites through an OpenAI-compatible completions endpoint. */
  endpoint?: string;
  /**
   * Built-in runner for zoo models: `fast` (wasm SIMD kernels over worker threads) or `tfjs` (the
   * reference it is tested against). Both give the same greedy outputs; the result's `backend`
   * names the one used. Unset: the fast runner where it can take the model, else the reference.
   */
  runner?: ZooRunner;
  /** Worker threads of the fast runner (default: the machine's cores); 'elastic': the process's thread budget, which may change while it runs (sweep workers). */
  threads?: FastThreads;
  /** Tokens processed by the built-in runner, as work proceeds (progress displays). */
  onTokens?: (n: number) => void;
  /** Progress lines (suite started/finished). */
  log?: (line: string) => void;
}

export const ZOO_RUNNERS = ['fast', 'tfjs'] as const;
export type ZooRunner = (typeof ZOO_RUNNERS)[number];

/**
 * Keys cached evaluations (with the suite files' contents): the sources that turn a model folder
 * into scores, i.e. this module, the built-in zoo inference and the checkpoint reader.
 */
export const EVALUATOR_VERSION = `eval-${codeDigest(['eval', 'eval/runner-typed/kernels.wat', 'ifeval', 'zoo/model.ts', 'zoo/generate.ts', 'zoo/io.ts', 'zoo/tokenizer.ts', 'zoo/tfGradients.ts', 'checkpoint'])}`;

export const DEFAULT_EVALS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../evals');

export interface SuiteOutcome { metrics: Record<string, number>; specs: Record<string, MetricSpec>; items: SuiteItems; samples: EvalSample[] }

const mean = (xs: boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : NaN);

async function runGeneration(task: LoadedTask, rows: Row[], backend: EvalBackend, batchSize: number, prompt: string, gen: { max_new_tokens: number; stop: string[] }, chat?: { system?: string; user: string }) {
  const turns = (r: Row): ChatMessage[] => [...(chat?.system ? [{ role: 'system' as const, content: renderTemplate(chat.system, r) }] : []), { role: 'user', content: renderTemplate(chat!.user, r) }];
  const reqs = rows.map((r) => ({ id: String(r[task.spec.id_field]), prompt: renderTemplate(prompt, r), maxNewTokens: gen.max_new_tokens, stop: gen.stop, ...(chat ? { messages: turns(r) } : {}) }));
  const raw: Generation[] = await backend.generate(reqs, { batchSize });
  return reqs.map((q, i) => {
    const g = raw[i];
    const { text, stopped } = cutAtStop(g.text, gen.stop);
    return { id: q.id, prompt: q.prompt, raw: g.text, output: text, degenerate: isDegenerate(text, stopped ? false : g.hitLimit) };
  });
}

/** Runs one loaded suite on a backend; pure scoring around the backend's I/O. */
export async function runSuite(task: LoadedTask, backend: EvalBackend, opts: { limit?: number; batchSize?: number; samples?: number } = {}): Promise<SuiteOutcome> {
  const rows = selectRows(task, opts.limit);
  const batchSize = opts.batchSize ?? 32;
  const keep = opts.samples ?? 5;
  const spec = task.spec;
  const suite = spec.task;
  const specs = suiteMetricSpecs(spec);
  const items: SuiteItems = { ids: rows.map((r) => String(r[spec.id_field])), values: {}, weights: {} };
  const perItem = (name: string, per: { values: number[]; weights?: number[] }): void => {
    items.values[name] = per.values;
    if (per.weights) items.weights[name] = per.weights;
  };

  if (spec.type === 'loglikelihood_rolling') {
    const texts = rows.map((r) => String(r[spec.text_field]));
    const scores = await backend.score(rows.map((r, i) => ({ id: String(r[spec.id_field]), text: texts[i] })), { batchSize });
    const all = perplexityMetrics(scores, texts.reduce((s, t) => s + t.length, 0));
    const per = perplexityItems(scores, texts.map((t) => t.length));
    const metrics: Record<string, number> = { n: rows.length, tokens: scores.reduce((s, x) => s + x.tokens, 0) };
    for (const { metric } of spec.metrics) {
      metrics[metric] = all[metric];
      perItem(metric, per[metric]);
    }
    return { metrics, specs, items, samples: [] };
  }

  const outs = await runGeneration(task, rows, backend, batchSize, spec.prompt, spec.generation, spec.chat);
  const metrics: Record<string, number> = { n: rows.length };
  let correct: boolean[];
  if (spec.type === 'generate_until') {
    const first: boolean[][] = [];
    for (const f of spec.filters) {
      const extracted = outs.map((o) => applyFilter(o.output, f));
      for (const m of spec.metrics) {
        const hits = rows.map((r, i) => exactMatch(extracted[i], renderTemplate(spec.target, r), m));
        metrics[`${m.metric}_${f.name}`] = mean(hits);
        perItem(`${m.metric}_${f.name}`, { values: hits.map(Number) });
        first.push(hits);
      }
    }
    correct = first[0];
  } else {
    const verdicts: IfevalVerdict[] = rows.map((r, i) => ifevalVerdict(outs[i].output, r.instruction_id_list as string[], r.kwargs as unknown[]));
    const agg = ifevalAggregate(verdicts);
    const per = ifevalItems(verdicts);
    for (const { metric } of spec.metrics) {
      metrics[metric] = agg[metric];
      perItem(metric, per[metric]);
    }
    correct = verdicts.map((v) => v.strict.every(Boolean));
  }
  metrics.degenerate_rate = mean(outs.map((o) => o.degenerate));
  perItem('degenerate_rate', { values: outs.map((o) => Number(o.degenerate)) });
  const samples = outs.slice(0, keep).map((o, i) => ({ suite, id: o.id, prompt: o.prompt, output: o.output, correct: correct[i] }));
  return { metrics, specs, items, samples };
}

export async function openBackend(modelDir: string, opts: Pick<EvalOptions, 'delegateCmd' | 'endpoint' | 'runner' | 'threads' | 'onTokens'>): Promise<EvalBackend> {
  if (opts.delegateCmd && opts.endpoint) throw new UserError('give either --delegate-cmd or --endpoint, not both');
  if (opts.delegateCmd) return new DelegateBackend(opts.delegateCmd, modelDir);
  if (opts.endpoint) return new HttpBackend(opts.endpoint, modelDir);
  const runner = opts.runner ?? 'fast';
  if (!ZOO_RUNNERS.includes(runner)) throw new UserError(`runner "${runner}": expected one of ${ZOO_RUNNERS.join(', ')}`, { field: 'runner' });
  // Loaded lazily: delegated runs must not pay for (or depend on) either runtime.
  if (runner === 'fast') {
    const { FastZooBackend, FastRunnerUnsupported } = await import('./backends/fast.js');
    try {
      return await FastZooBackend.open(modelDir, { threads: opts.threads, onTokens: opts.onTokens });
    } catch (e) {
      // Asked for by name, the fast runner's refusal stands; by default the reference scores the
      // model instead (same outputs by contract, and the result's backend says which ran).
      if (opts.runner === 'fast' || !(e instanceof FastRunnerUnsupported)) throw e;
    }
  }
  const { ZooBackend } = await import('./backends/zoo.js');
  return ZooBackend.open(modelDir, opts.onTokens);
}

/** Loads and validates every suite before any model time is spent. */
export async function loadSuites(opts: Pick<EvalOptions, 'suites' | 'evalsDir'>): Promise<LoadedTask[]> {
  if (opts.suites.length === 0) throw new UserError('no eval suite given (e.g. --suite math,chat,lm)', { field: 'suite' });
  const dup = opts.suites.find((s, i) => opts.suites.indexOf(s) !== i);
  if (dup) throw new UserError(`eval suite "${dup}" is listed twice`, { field: 'suite' });
  return Promise.all(opts.suites.map((s) => loadTask(s, opts.evalsDir ?? DEFAULT_EVALS_DIR)));
}

/** Evaluates suites on an open backend (the caller owns and disposes it). */
export async function evaluateBackend(backend: EvalBackend, model: string, opts: EvalOptions, loaded?: LoadedTask[]): Promise<EvalResult> {
  const t0 = performance.now();
  const tasks = loaded ?? (await loadSuites(opts));
  const result: EvalResult = { model, backend: backend.name, metrics: {}, metricSpecs: {}, items: {}, samples: [], timings: {} };
  for (const task of tasks) {
    const t = performance.now();
    opts.log?.(`eval ${task.spec.task}: ${selectRows(task, opts.limit).length} items`);
    const out = await runSuite(task, backend, opts);
    result.metrics[task.spec.task] = out.metrics;
    result.metricSpecs[task.spec.task] = out.specs;
    result.items[task.spec.task] = out.items;
    result.samples.push(...out.samples);
    result.timings[task.spec.task] = (performance.now() - t) / 1000;
  }
  result.timings.total = (performance.now() - t0) / 1000;
  return result;
}

export async function evaluateModel(modelDir: string, opts: EvalOptions): Promise<EvalResult> {
  const t0 = performance.now();
  const tasks = await loadSuites(opts);
  const backend = await openBackend(modelDir, opts);
  const load = (performance.now() - t0) / 1000;
  try {
    const res = await evaluateBackend(backend, modelDir, opts, tasks);
    res.timings = { load, ...res.timings, total: (performance.now() - t0) / 1000 };
    return res;
  } finally {
    await backend.dispose();
  }
}

/** `{ math: { exact_match_strict: 0.6 } }` -> `{ 'math.exact_match_strict': 0.6 }`. */
export function flattenMetrics(metrics: EvalResult['metrics']): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [suite, ms] of Object.entries(metrics)) for (const [m, v] of Object.entries(ms)) out[`${suite}.${m}`] = v;
  return out;
}
