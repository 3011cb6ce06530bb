/**
 * One entry point for scoring a model folder with the backend an experiment names: built-in,
 * a delegate command, an OpenAI-compatible server (started here per model, or the user's), or
 * lm-evaluation-harness. Returns what the sweep records, with provenance; a server or lm_eval
 * process started here is stopped (its whole process group) on success, on failure and on abort.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_EVALS_DIR, evaluateBackend, evaluateModel, loadSuites, type EvalResult } from '../evaluate.js';
import { UserError } from '../../util/errors.js';
import { backendKey, type EvalBackendConfig, type Gpu, type LmEvalConfig, type OpenAIConfig } from './config.js';
import { DelegateBackend } from './delegate.js';
import { findOutput, parseResults, parseSamples, taskMetrics, taskOutcomes, taskSpecs, type EvalSampleOut } from './lm-eval-output.js';
import type { MetricSpec, SuiteItems } from '../../results/metric.js';
import type { ScoredBy } from '../../results/record.js';
import { OpenAIClient, waitReady } from './openai.js';
import { EvalBackendError, fillTemplate, freePort, logTail, startProcess, type ServerProcess } from './process.js';

export { freePort } from './process.js';

/** The evaluation settings of an experiment (`eval:`), backend included. */
export interface BackendEvalConfig {
  suites: string[];
  limit: number | null;
  batchSize: number;
  samples: number;
  backend: EvalBackendConfig;
}

export interface BackendRunOptions {
  /** GPUs given to this evaluation (CUDA_VISIBLE_DEVICES and `{gpu}`). */
  gpus?: readonly Gpu[];
  /** Port for a started server; default: a free one. */
  port?: number;
  /** Where a started server's or lm_eval's output goes (appended). Default: a file in the temp folder. */
  logFile?: string;
  /** Folder of pid files of running servers (see reapServers). */
  pidDir?: string;
  /** Folder for lm_eval's --output_path (kept); default: a temporary folder, removed afterwards. */
  workDir?: string;
  signal?: AbortSignal;
  evalsDir?: string;
  log?: (line: string) => void;
}

/** Who scored a record (the record's `scoredBy`). */
export type Provenance = ScoredBy;

export interface BackendEvalOutput {
  backend: string;
  metrics: Record<string, Record<string, number>>;
  /** What each metric is (direction, role, aggregation), by suite. */
  metricSpecs: Record<string, Record<string, MetricSpec>>;
  /** Per-item outcomes by suite, where the backend gives them. */
  items: Record<string, SuiteItems>;
  samples: EvalSampleOut[];
  timings: Record<string, number>;
  provenance: Provenance;
}

function fromResult(r: EvalResult, provenance: Provenance): BackendEvalOutput {
  return { backend: r.backend, metrics: r.metrics, metricSpecs: r.metricSpecs, items: r.items, samples: r.samples, timings: r.timings, provenance };
}

export async function evaluateWithBackend(modelDir: string, cfg: BackendEvalConfig, opts: BackendRunOptions = {}): Promise<BackendEvalOutput> {
  const b = cfg.backend;
  const evalOpts = { suites: cfg.suites, limit: cfg.limit ?? undefined, batchSize: cfg.batchSize, samples: cfg.samples, evalsDir: opts.evalsDir ?? DEFAULT_EVALS_DIR, log: opts.log };
  opts.signal?.throwIfAborted();
  switch (b.type) {
    case 'builtin':
      return fromResult(await evaluateModel(modelDir, evalOpts), { backend: 'builtin', key: backendKey(b) });
    case 'command': {
      const tasks = await loadSuites(evalOpts);
      const backend = new DelegateBackend(b.cmd, modelDir, b.timeout * 1000);
      const r = await evaluateBackend(backend, modelDir, evalOpts, tasks);
      return fromResult(r, { backend: 'command', key: backendKey(b), template: b.cmd, command: b.cmd.replaceAll('{model}', modelDir) });
    }
    case 'openai':
      return b.endpoint ? evaluateEndpoint(modelDir, b, b.endpoint, cfg, evalOpts, opts) : evaluateServed(modelDir, b, cfg, evalOpts, opts);
    case 'lm-eval':
      return evaluateLmEval(modelDir, b, cfg, opts);
  }
}

type EvalOpts = Parameters<typeof evaluateBackend>[2];

async function evaluateEndpoint(modelDir: string, b: OpenAIConfig, endpoint: string, cfg: BackendEvalConfig, evalOpts: EvalOpts, opts: BackendRunOptions, served?: { proc: ServerProcess; port: number; logFile: string }): Promise<BackendEvalOutput> {
  const tasks = await loadSuites(evalOpts);
  // Once one request fails the evaluation, the others in flight or queued are dropped, not left
  // retrying against a server that is being stopped.
  const done = new AbortController();
  const client = await OpenAIClient.connect({
    baseUrl: endpoint,
    model: b.model,
    concurrency: b.concurrency,
    retries: b.retries,
    backoffMs: b.backoff * 1000,
    requestTimeoutMs: b.request_timeout * 1000,
    chat: b.chat,
    signal: opts.signal ? AbortSignal.any([opts.signal, done.signal]) : done.signal,
    serverGone: served ? () => exitText(served.proc) : undefined,
    name: served ? `openai-serve:${b.serve}` : `openai:${endpoint}`,
  });
  let r: EvalResult;
  try {
    r = await evaluateBackend(client, modelDir, evalOpts, tasks);
  } finally {
    client.dispose();
    done.abort(new EvalBackendError('evaluation over'));
  }
  const provenance: Provenance = { backend: 'openai', key: backendKey(b), endpoint, servedModel: client.servedModel, retries: client.retried.length };
  if (served) {
    provenance.template = b.serve;
    provenance.command = served.proc.line;
    provenance.server = { pid: served.proc.pid, port: served.port, gpus: served.proc.gpus, logFile: served.logFile };
  }
  return fromResult(r, provenance);
}

function exitText(p: ServerProcess): string | null {
  const e = p.exit();
  if (!e) return null;
  return e.signal ? `server was killed by ${e.signal}` : e.code === 127 ? 'server exited with code 127 (command not found)' : `server exited with code ${e.code}`;
}

async function defaultLog(tag: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `mergelab-${tag}-`));
  return path.join(dir, `${tag}.log`);
}

/** Runs `fn` with `proc` stopped afterwards, whatever happens, and at once on abort. */
async function withProcess<T>(proc: ServerProcess, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  const onAbort = () => void proc.stop();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await proc.stop();
  }
}

async function evaluateServed(modelDir: string, b: OpenAIConfig, cfg: BackendEvalConfig, evalOpts: EvalOpts, opts: BackendRunOptions): Promise<BackendEvalOutput> {
  await loadSuites(evalOpts);
  const port = opts.port ?? (await freePort(b.host));
  const logFile = opts.logFile ?? (await defaultLog('server'));
  const proc = await startProcess({ command: b.serve!, modelDir, port, host: b.host, gpus: opts.gpus ?? [], logFile, pidDir: opts.pidDir, env: b.env, stopGraceMs: b.stop_grace * 1000 });
  opts.log?.(`server pid ${proc.pid} on port ${port}${proc.gpus ? ` (CUDA_VISIBLE_DEVICES=${proc.gpus})` : ''}: ${proc.line}`);
  const url = `http://${b.host.includes(':') ? `[${b.host}]` : b.host}:${port}`;
  const tail = async (e: unknown): Promise<never> => {
    if (e instanceof EvalBackendError) {
      const t = await logTail(logFile);
      throw new EvalBackendError(`${e.message}${t ? `; server log (${logFile}): ${t}` : ''}`);
    }
    throw e;
  };
  return withProcess(proc, opts.signal, async () => {
    const t0 = performance.now();
    await waitReady(url, { timeoutMs: b.ready_timeout * 1000, signal: opts.signal, exited: () => exitText(proc) }).catch(tail);
    const ready = (performance.now() - t0) / 1000;
    const out = await evaluateEndpoint(modelDir, b, url, cfg, evalOpts, opts, { proc, port, logFile }).catch(tail);
    out.timings = { server_start: ready, ...out.timings };
    return out;
  });
}

async function evaluateLmEval(modelDir: string, b: LmEvalConfig, cfg: BackendEvalConfig, opts: BackendRunOptions): Promise<BackendEvalOutput> {
  const missing = cfg.suites.filter((s) => b.tasks[s] === undefined);
  if (missing.length) throw new UserError(`eval.backend.tasks: suite ${missing.join(', ')} has no lm-eval task (add it, e.g. tasks: {${missing[0]}: <lm-eval task name>})`, { field: 'eval.backend.tasks' });
  if (b.command.includes('{limit}') && cfg.limit === null) throw new UserError('eval.backend.command uses {limit} but eval.limit is not set', { field: 'eval.backend.command' });
  const tasks = cfg.suites.map((s) => b.tasks[s]);
  const work = opts.workDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'mergelab-lm-eval-')));
  const out = path.join(work, 'out');
  await fs.rm(out, { recursive: true, force: true });
  const logFile = opts.logFile ?? path.join(work, 'lm_eval.log');
  let line = fillTemplate(b.command, { model: modelDir, tasks: tasks.join(','), out, limit: String(cfg.limit ?? ''), gpu: (opts.gpus ?? []).join(',') });
  if (cfg.limit !== null && !b.command.includes('{limit}')) line += ` --limit ${cfg.limit}`;
  // Per-document outcomes and generations come from the samples files only it writes.
  if (!/(^|\s)--log_samples(\s|$)/.test(b.command)) line += ' --log_samples';
  if (b.apply_chat_template) line += ' --apply_chat_template';
  const t0 = performance.now();
  try {
    const proc = await startProcess({ command: line, modelDir, port: 0, host: '', gpus: opts.gpus ?? [], logFile, pidDir: opts.pidDir, env: b.env, stopGraceMs: 15_000 });
    opts.log?.(`lm_eval pid ${proc.pid}: ${proc.line}`);
    await withProcess(proc, opts.signal, async () => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), b.timeout * 1000)));
      const aborted = new Promise<'abort'>((r) => opts.signal?.addEventListener('abort', () => r('abort'), { once: true }));
      const how = await Promise.race([proc.exited.then(() => 'exit' as const), timedOut, aborted]);
      clearTimeout(timer);
      opts.signal?.throwIfAborted();
      if (how === 'timeout') throw new EvalBackendError(`lm_eval still running after ${b.timeout} s (timeout); log ${logFile}`);
      const e = proc.exit()!;
      if (e.code === 127) throw new UserError(`${line.split(' ')[0]}: command not found. Install lm-evaluation-harness (pip install "lm_eval[hf,ifeval]"; "lm_eval[vllm]" for --model vllm) or set eval.backend.command`, { field: 'eval.backend.command' });
      if (e.code !== 0) throw new EvalBackendError(`lm_eval ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`}: ${await logTail(logFile)}`);
    });
    const elapsed = (performance.now() - t0) / 1000;
    const found = await findOutput(out);
    const res = parseResults(await fs.readFile(found.results, 'utf8'), found.results);
    const metrics: Record<string, Record<string, number>> = {};
    const metricSpecs: Record<string, Record<string, MetricSpec>> = {};
    const items: Record<string, SuiteItems> = {};
    const samples: EvalSampleOut[] = [];
    for (const [i, suite] of cfg.suites.entries()) {
      metrics[suite] = taskMetrics(res, tasks[i], found.results);
      const sf = found.samples.get(tasks[i]);
      let aggregation = {};
      if (sf) {
        const text = await fs.readFile(sf, 'utf8');
        samples.push(...parseSamples(text, suite, cfg.samples, sf));
        const o = taskOutcomes(text, metrics[suite], sf);
        if (Object.keys(o.items.values).length) items[suite] = o.items;
        aggregation = o.aggregation;
      }
      metricSpecs[suite] = taskSpecs(res, tasks[i], metrics[suite], aggregation);
    }
    const provenance: Provenance = { backend: 'lm-eval', key: backendKey(b), template: b.command, command: line, logFile, ...(opts.gpus?.length ? { gpus: opts.gpus.join(',') } : {}) };
    if (opts.workDir) provenance.outputDir = out;
    if (res.lm_eval_version) provenance.lmEvalVersion = res.lm_eval_version;
    return {
      backend: `lm-eval:${b.command}`,
      metrics,
      metricSpecs,
      items,
      samples,
      timings: { lm_eval: elapsed, total: (performance.now() - t0) / 1000 },
      provenance,
    };
  } finally {
    if (!opts.workDir) await fs.rm(work, { recursive: true, force: true });
  }
}
