/**
 * The process's worker threads for the fast runner, started once and reused by every model and
 * job (starting one costs about half a second: it loads its modules). A model is sent to a
 * thread with the first job that needs it there; a job's rows are claimed one at a time from a
 * counter in shared memory by every thread working on it, so threads can join a running job, or
 * leave it after their current rows, without changing any result.
 *
 * How many threads a job uses is fixed by its caller (`threads: n`), or follows the process's
 * thread budget (`threads: 'budget'`), which a sweep worker raises while another core idles and
 * lowers when that core is wanted back (`setThreadBudget`). Jobs run one after another.
 *
 * A job may bring a part for the calling thread (`local`): it claims rows like the others and
 * counts as one of the job's threads, so a job on one thread starts none (a thread's start costs
 * about half a second), and a second one is started only when the job may have two. It runs one
 * model call per step and lets the event loop in every few milliseconds, so the calling thread
 * still hears of budget changes while it works.
 */
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ZooConfig } from '../../zoo/model.js';
import type { RopeTables } from './model.js';
import type { Claim, GenOut, GenRow, ScoreRow } from './run.js';

/** What a thread needs to build a model. */
export interface ThreadModel { config: ZooConfig; arrays: Array<[string, Float32Array]>; rope: RopeTables; words: string[] }

export type JobOp = { op: 'generate'; rows: GenRow[]; earlyStop: boolean } | { op: 'score'; rows: ScoreRow[] };

/** Messages to a thread. `ctl`: [next row to claim, then one flag per thread: 1 while it may claim]. */
export type ToThread =
  | { type: 'model'; id: number; model: ThreadModel }
  | { type: 'drop'; id: number }
  | ({ type: 'job'; job: number; model: number; order: Int32Array; ctl: Int32Array; slot: number } & JobOp);

export type FromThread =
  | { type: 'ready' }
  | { type: 'tokens'; job: number; n: number }
  | { type: 'done'; job: number; results: Array<[number, GenOut | Float32Array]> }
  | { type: 'error'; job: number; message: string };

/** Most threads a pool starts (the flags in a job's control block). */
const MAX_THREADS = 64;
/** The calling thread's part lets the event loop in after running this long. */
const LOCAL_SLICE_MS = 20;

/** The calling thread's part in a job: the rows `claim` hands out, each result to `onRow`, one model call per step. */
export type LocalPart<R> = (claim: Claim, onRow: (i: number, r: R) => void) => Iterator<void>;

/** Registers tsx's hooks inside the thread when running from TypeScript sources (execArgv --import is not honoured for workers on Node 20, and vitest has no tsx). */
function bootstrapCode(): string {
  const fromTs = import.meta.url.endsWith('.ts');
  const file = new URL(fromTs ? './thread.ts' : './thread.js', import.meta.url).href;
  if (!fromTs) return `import(${JSON.stringify(file)})`;
  const require = createRequire(import.meta.url);
  const api = pathToFileURL(require.resolve('tsx/esm/api').replace(/index\.cjs$/, 'index.mjs')).href;
  return `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(file)}); })`;
}

let nextModelId = 1;

/** A model the pool's threads can run. */
export class PoolModel {
  readonly id = nextModelId++;
  constructor(readonly init: ThreadModel) {}
}

interface Job {
  id: number;
  model: PoolModel;
  op: JobOp;
  order: Int32Array;
  ctl: Int32Array;
  threads: number | 'budget';
  local?: LocalPart<unknown>;
  /** Threads working on it (flag set) and threads told to stop that have not reported yet. */
  working: Set<Slot>;
  stopping: Set<Slot>;
  results: unknown[];
  got: number;
  onTokens?: (n: number) => void;
  resolve: (r: unknown[]) => void;
  reject: (e: Error) => void;
}

interface Slot { index: number; worker: Worker; ready: Promise<void>; models: Set<number>; job?: Job; failed?: Error }

export class ThreadPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private current?: Job;
  private nextJob = 1;
  private budget = 1;

  constructor(readonly maxThreads = Math.min(MAX_THREADS, availableParallelism())) {}

  /** Threads that jobs following the budget may use from now on, running ones included (at least 1). */
  setBudget(n: number): void {
    this.budget = Math.max(1, Math.min(this.maxThreads, Math.floor(n)));
    this.adjust();
  }

  get threadBudget(): number {
    return this.budget;
  }

  /** Threads started so far. */
  get started(): number {
    return this.slots.length;
  }

  /**
   * Runs rows (each claimed once, costliest first by `order`) on the pool, and on the calling
   * thread too when `local` is given (then one thread fewer is started); results in row order.
   */
  run<R>(model: PoolModel, op: JobOp, order: Int32Array, threads: number | 'budget', onTokens?: (n: number) => void, local?: LocalPart<R>): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      const job: Job = {
        id: this.nextJob++,
        model,
        op,
        order,
        ctl: new Int32Array(new SharedArrayBuffer(4 * (1 + MAX_THREADS))),
        threads,
        local: local as LocalPart<unknown> | undefined,
        working: new Set(),
        stopping: new Set(),
        results: new Array(op.rows.length),
        got: 0,
        onTokens,
        resolve: resolve as (r: unknown[]) => void,
        reject,
      };
      if (op.rows.length === 0) return resolve([]);
      this.queue.push(job);
      this.adjust();
    });
  }

  /** Forget a model in every thread that has it. */
  drop(model: PoolModel): void {
    for (const s of this.slots) {
      if (s.models.delete(model.id)) s.worker.postMessage({ type: 'drop', id: model.id } satisfies ToThread);
    }
  }

  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private want(job: Job): number {
    return Math.max(1, Math.min(this.maxThreads, job.threads === 'budget' ? this.budget : job.threads));
  }

  /** Starts the next job, and brings the current one's threads to what it wants. */
  private adjust(): void {
    if (!this.current) {
      this.current = this.queue.shift();
      if (this.current?.local) void this.runLocal(this.current);
    }
    const job = this.current;
    if (!job) return;
    const want = this.want(job) - (job.local ? 1 : 0);
    while (job.working.size > want) {
      // The latest to join leaves first; it reports its rows when they are done.
      const s = [...job.working].pop()!;
      job.working.delete(s);
      job.stopping.add(s);
      Atomics.store(job.ctl, 1 + s.index, 0);
    }
    while (job.working.size < want) {
      const s = this.slots.find((x) => !x.job && !x.failed) ?? (this.slots.length < this.maxThreads ? this.spawn() : undefined);
      if (!s) break;
      this.join(s, job);
    }
  }

  /** The calling thread's part of `job`, in slices between which the event loop runs. */
  private async runLocal(job: Job): Promise<void> {
    const claim: Claim = () => {
      const k = Atomics.add(job.ctl, 0, 1);
      return k < job.order.length ? job.order[k] : undefined;
    };
    try {
      const steps = job.local!(claim, (i, r) => {
        if (job.results[i] === undefined) job.got++;
        job.results[i] = r;
      });
      let since = performance.now();
      while (!steps.next().done) {
        if (performance.now() - since < LOCAL_SLICE_MS) continue;
        await new Promise<void>((r) => setImmediate(r));
        // A thread failed the job meanwhile: stop (returning the steps releases their buffers).
        if (job !== this.current) return void steps.return?.();
        since = performance.now();
      }
    } catch (e) {
      this.fail(job, e instanceof Error ? e : new Error(String(e)));
      this.adjust();
      return;
    }
    if (job.got === job.results.length && job === this.current) {
      this.finish(job);
      this.adjust();
    }
  }

  private join(s: Slot, job: Job): void {
    s.job = job;
    job.working.add(s);
    Atomics.store(job.ctl, 1 + s.index, 1);
    s.worker.ref();
    void s.ready.then(() => {
      if (!s.models.has(job.model.id)) {
        s.models.add(job.model.id);
        s.worker.postMessage({ type: 'model', id: job.model.id, model: job.model.init } satisfies ToThread);
      }
      s.worker.postMessage({ type: 'job', job: job.id, model: job.model.id, order: job.order, ctl: job.ctl, slot: s.index, ...job.op } satisfies ToThread);
    });
  }

  private spawn(): Slot {
    const worker = new Worker(bootstrapCode(), { eval: true });
    let readyResolve!: () => void;
    const slot: Slot = { index: this.slots.length, worker, ready: new Promise<void>((r) => (readyResolve = r)), models: new Set() };
    worker.on('message', (m: FromThread) => {
      if (m.type === 'ready') return readyResolve();
      const job = slot.job;
      if (!job || m.job !== job.id) return;
      if (m.type === 'tokens') return job.onTokens?.(m.n);
      slot.job = undefined;
      worker.unref();
      job.working.delete(slot);
      job.stopping.delete(slot);
      if (m.type === 'error') this.fail(job, new Error(`fast runner thread: ${m.message}`));
      else {
        for (const [i, r] of m.results) {
          if (job.results[i] === undefined) job.got++;
          job.results[i] = r;
        }
        if (job.got === job.results.length && job === this.current) this.finish(job);
      }
      this.adjust();
    });
    worker.on('error', (e) => {
      slot.failed = e;
      const job = slot.job;
      slot.job = undefined;
      if (job) this.fail(job, e);
      this.adjust();
    });
    this.slots.push(slot);
    return slot;
  }

  private finish(job: Job): void {
    // Threads still registered found nothing left to claim; they report an empty part, ignored.
    for (const s of [...job.working, ...job.stopping]) Atomics.store(job.ctl, 1 + s.index, 0);
    this.current = undefined;
    job.resolve(job.results);
  }

  private fail(job: Job, e: Error): void {
    if (job !== this.current) return;
    for (const s of [...job.working, ...job.stopping]) Atomics.store(job.ctl, 1 + s.index, 0);
    // Stop the others from claiming more rows of a job that has failed.
    Atomics.store(job.ctl, 0, job.order.length);
    this.current = undefined;
    job.reject(e);
  }
}

let shared: ThreadPool | undefined;

/** The process's pool. */
export function threadPool(): ThreadPool {
  shared ??= new ThreadPool();
  return shared;
}

/** Threads the process's budget-following jobs may use from now on (see ThreadPool.setBudget). */
export function setThreadBudget(n: number): void {
  threadPool().setBudget(n);
}
