/**
 * The fast runner for one model: its rows run in the calling thread, or there and on the
 * process's worker threads (pool.ts), each with its own kernel instance and copy of the weights
 * (3 MB for the zoo). Rows are independent, so where each one runs changes no result.
 */
import { availableParallelism } from 'node:os';
import { ropeTables, type ZooConfig } from '../../zoo/model.js';
import type { ZooTokenizer } from '../../zoo/tokenizer.js';
import { FastModel, type RopeTables } from './model.js';
import { PoolModel, threadPool, type JobOp, type LocalPart } from './pool.js';
import { claimOrder, generateRows, generateSteps, scoreRows, scoreSteps, sequentialClaim, type GenOut, type GenRow, type ScoreRow } from './run.js';

/**
 * Threads: a number (1 runs in the calling thread), or 'elastic': as many as the process's thread
 * budget allows at each moment (`setThreadBudget` in pool.ts; 1 until raised). Either way the
 * calling thread is one of them (n - 1 worker threads are started).
 */
export type FastThreads = number | 'elastic';

export interface FastRunnerOptions {
  /** Default: the machine's cores. */
  threads?: FastThreads;
  /** End a row once its first stop string is settled (outputs after cutting are unchanged). Default true. */
  earlyStop?: boolean;
  /** Tokens processed (prompt and generated), reported as work proceeds. */
  onTokens?: (n: number) => void;
}

/** Estimated tokens below which a job runs in the calling thread (a thread's start costs more). */
const MIN_THREADED_TOKENS = 4096;

export class FastRunner {
  private local?: FastModel;
  private pooled?: PoolModel;
  private readonly threads: FastThreads;
  private readonly earlyStop: boolean;
  private readonly rope: RopeTables;
  onTokens?: (n: number) => void;

  constructor(
    private readonly config: ZooConfig,
    private readonly arrays: Map<string, Float32Array>,
    private readonly tokenizer: ZooTokenizer,
    opts: FastRunnerOptions = {},
  ) {
    this.threads = opts.threads === 'elastic' ? 'elastic' : Math.max(1, opts.threads ?? availableParallelism());
    this.earlyStop = opts.earlyStop ?? true;
    this.onTokens = opts.onTokens;
    this.rope = ropeTables(config, Array.from({ length: config.maxPositions }, (_, i) => i));
  }

  get threadCount(): FastThreads {
    return this.threads;
  }

  private localModel(): FastModel {
    this.local ??= new FastModel(this.config, this.arrays, this.rope);
    return this.local;
  }

  private useThreads(costs: readonly number[]): boolean {
    return this.threads !== 1 && costs.reduce((a, b) => a + b, 0) >= MIN_THREADED_TOKENS;
  }

  private onPool<R>(op: JobOp, costs: number[], local: LocalPart<R>): Promise<R[]> {
    this.pooled ??= new PoolModel({ config: this.config, arrays: [...this.arrays], rope: this.rope, words: [...this.tokenizer.words] });
    return threadPool().run<R>(this.pooled, op, claimOrder(costs), this.threads === 'elastic' ? 'budget' : this.threads, (n) => this.onTokens?.(n), local);
  }

  async generate(rows: GenRow[]): Promise<GenOut[]> {
    const costs = rows.map((r) => r.ids.length + r.maxNew);
    if (this.useThreads(costs)) {
      const local: LocalPart<GenOut> = (claim, onRow) => generateSteps(this.localModel(), rows, claim, (id) => this.tokenizer.idToString(id), this.earlyStop, onRow, this.onTokens);
      return this.onPool<GenOut>({ op: 'generate', rows, earlyStop: this.earlyStop }, costs, local);
    }
    const out = new Array<GenOut>(rows.length);
    generateRows(this.localModel(), rows, sequentialClaim(claimOrder(costs)), (id) => this.tokenizer.idToString(id), this.earlyStop, (i, o) => (out[i] = o), this.onTokens);
    return out;
  }

  /** Logits of every scored position, per row (see scoreRows). */
  async score(rows: ScoreRow[]): Promise<Float32Array[]> {
    const costs = rows.map((r) => r.ids.length);
    if (this.useThreads(costs)) return this.onPool<Float32Array>({ op: 'score', rows }, costs, (claim, onRow) => scoreSteps(this.localModel(), rows, claim, onRow, this.onTokens));
    const out = new Array<Float32Array>(rows.length);
    scoreRows(this.localModel(), rows, sequentialClaim(claimOrder(costs)), (i, lg) => (out[i] = lg), this.onTokens);
    return out;
  }

  async dispose(): Promise<void> {
    if (this.pooled) threadPool().drop(this.pooled);
    this.pooled = undefined;
    this.local = undefined;
  }
}
