/**
 * The fast runner for one model: rows split across worker threads (or run in this thread), each
 * thread with its own kernel instance and copy of the weights (3 MB for the zoo). Rows are
 * independent, so the split changes no result; it is chosen to balance the threads' work.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ropeTables, type ZooConfig } from '../../zoo/model.js';
import type { ZooTokenizer } from '../../zoo/tokenizer.js';
import { FastModel, type RopeTables } from './model.js';
import { generateRows, scoreRows, type GenOut, type GenRow, type ScoreRow } from './run.js';
import { kernelModule } from './wasm.js';
import type { ThreadInit, ThreadJob } from './thread.js';

export interface FastRunnerOptions {
  /** Worker threads; 1 runs in the calling thread. Default: the machine's cores. */
  threads?: number;
  /** End a row once its first stop string is settled (outputs after cutting are unchanged). Default true. */
  earlyStop?: boolean;
  /** Tokens processed (prompt and generated), reported as work proceeds. */
  onTokens?: (n: number) => void;
}

/** tsx's hooks are registered inside the worker (execArgv --import is not honoured for workers on Node 20, and vitest has no tsx). */
function bootstrapCode(): string {
  const require = createRequire(import.meta.url);
  const api = pathToFileURL(require.resolve('tsx/esm/api').replace(/index\.cjs$/, 'index.mjs')).href;
  const file = new URL(import.meta.url.endsWith('.ts') ? './thread.ts' : './thread.js', import.meta.url).href;
  return `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(file)}); })`;
}

/** Longest-processing-time split of rows into n parts by estimated cost; returns row indices per part. */
export function splitRows(costs: readonly number[], n: number): number[][] {
  const parts: number[][] = Array.from({ length: n }, () => []);
  const load = new Array<number>(n).fill(0);
  const order = costs.map((_, i) => i).sort((a, b) => costs[b] - costs[a] || a - b);
  for (const i of order) {
    let best = 0;
    for (let p = 1; p < n; p++) if (load[p] < load[best]) best = p;
    parts[best].push(i);
    load[best] += costs[i];
  }
  return parts.map((p) => p.sort((a, b) => a - b));
}

/** Estimated tokens below which a job runs in the calling thread. */
const MIN_THREADED_TOKENS = 4096;

export class FastRunner {
  private local?: FastModel;
  private workers: Worker[] = [];
  private ready?: Promise<void>;
  private nextId = 1;
  private readonly threads: number;
  private readonly earlyStop: boolean;
  private readonly rope: RopeTables;
  onTokens?: (n: number) => void;

  constructor(
    private readonly config: ZooConfig,
    private readonly arrays: Map<string, Float32Array>,
    private readonly tokenizer: ZooTokenizer,
    opts: FastRunnerOptions = {},
  ) {
    this.threads = Math.max(1, opts.threads ?? availableParallelism());
    this.earlyStop = opts.earlyStop ?? true;
    this.onTokens = opts.onTokens;
    this.rope = ropeTables(config, Array.from({ length: config.maxPositions }, (_, i) => i));
    // Threads start now, so that loading their modules overlaps the caller's own setup; a start
    // failure surfaces at the first job that needs them.
    if (this.threads > 1) this.start().catch(() => {});
  }

  private localModel(): FastModel {
    this.local ??= new FastModel(this.config, this.arrays, this.rope);
    return this.local;
  }

  /** Starting threads costs about a second (each loads its modules); small jobs run here. */
  private useThreads(costs: readonly number[]): boolean {
    return this.threads > 1 && costs.length >= 2 * this.threads && costs.reduce((a, b) => a + b, 0) >= MIN_THREADED_TOKENS;
  }

  get threadCount(): number {
    return this.threads;
  }

  private start(): Promise<void> {
    this.ready ??= new Promise<void>((resolve, reject) => {
      const init: ThreadInit = { config: this.config, arrays: [...this.arrays], rope: this.rope, words: [...this.tokenizer.words], module: kernelModule(), earlyStop: this.earlyStop };
      let up = 0;
      for (let i = 0; i < this.threads; i++) {
        const w = new Worker(bootstrapCode(), { eval: true, workerData: init });
        // Ref'd until ready (nothing else may be keeping the process alive), then only while a job runs.
        w.once('message', (m: { ready?: boolean }) => {
          w.unref();
          if (m.ready && ++up === this.threads) resolve();
        });
        w.once('error', reject);
        this.workers.push(w);
      }
    });
    return this.ready;
  }

  private async run<R>(op: ThreadJob['op'], rows: GenRow[] | ScoreRow[], costs: number[]): Promise<R[]> {
    await this.start();
    const parts = splitRows(costs, this.threads);
    const out = new Array<R>(rows.length);
    await Promise.all(
      parts.map((idx, p) => {
        if (idx.length === 0) return Promise.resolve();
        const w = this.workers[p];
        const id = this.nextId++;
        return new Promise<void>((resolve, reject) => {
          const onMsg = (m: { id: number; tokens?: number; result?: R[]; error?: string }) => {
            if (m.id !== id) return;
            if (m.tokens !== undefined) this.onTokens?.(m.tokens);
            if (m.result) {
              m.result.forEach((r, j) => (out[idx[j]] = r));
              done();
              resolve();
            } else if (m.error) {
              done();
              reject(new Error(`fast runner thread: ${m.error}`));
            }
          };
          const onErr = (e: Error) => (done(), reject(e));
          const done = () => {
            w.off('message', onMsg);
            w.off('error', onErr);
            w.unref();
          };
          w.ref();
          w.on('message', onMsg);
          w.on('error', onErr);
          w.postMessage({ id, op, rows: idx.map((i) => rows[i]) } as ThreadJob);
        });
      }),
    );
    return out;
  }

  async generate(rows: GenRow[]): Promise<GenOut[]> {
    const costs = rows.map((r) => r.ids.length + r.maxNew);
    if (!this.useThreads(costs)) return generateRows(this.localModel(), rows, (id) => this.tokenizer.idToString(id), this.earlyStop, this.onTokens);
    return this.run<GenOut>('generate', rows, costs);
  }

  /** Logits of every scored position, per row (see scoreRows). */
  async score(rows: ScoreRow[]): Promise<Float32Array[]> {
    const costs = rows.map((r) => r.ids.length);
    if (!this.useThreads(costs)) return scoreRows(this.localModel(), rows, this.onTokens);
    return this.run('score', rows, costs);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
