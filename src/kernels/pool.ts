/**
 * A lazy pool of worker threads for the typed backend. Workers start on first use, are unref'd
 * while idle so they never keep a CLI command or a test run alive, and are ref'd only while a job
 * is in flight (an unref'd worker would let the process exit under a pending await).
 * Workers load TypeScript through tsx's loader, resolved from this package so it works from any cwd.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CombineArgs, MaskArray } from './loops.js';
import type { TopBoundary } from './select.js';
import type { HalfDType, RngKey } from './types.js';

interface Range {
  id: number;
  start: number;
  end: number;
}

export type WorkerJob = Range &
  (
    | { op: 'gram'; models: Float32Array[]; base: Float32Array | null; partials: Float64Array }
    | { op: 'maskedL1'; x: Float32Array; base: Float32Array; mask: MaskArray; partials: Float64Array }
    | { op: 'combine'; args: CombineArgs; partials: Float64Array }
    | { op: 'weightedSum'; arrays: Float32Array[]; coeffs: number[]; out: Float32Array }
    | { op: 'bernoulli'; key: RngKey; p: number; out: Uint8Array; partials: Float64Array }
    | { op: 'delta'; x: Float32Array; base: Float32Array; out: Float32Array }
    | { op: 'gc' }
    | { op: 'widen16'; dtype: HalfDType; buf: Float32Array; n: number }
    | { op: 'narrow16'; dtype: HalfDType; src: Float32Array; dst: Uint16Array }
    | { op: 'histHi'; data: Float32Array; hist: Uint32Array; off: number }
    | { op: 'histLo'; data: Float32Array; hiBin: number; hist: Uint32Array; off: number }
    | { op: 'bandMask'; data: Float32Array; inner: TopBoundary; outer: TopBoundary; mask: Uint8Array }
    | {
        op: 'della';
        d: Float32Array;
        rowLen: number;
        rho: number;
        eps: number;
        key: RngKey;
        inverse: boolean;
        mask: Uint8Array | Float32Array;
        partials: Float64Array;
      }
  );

/** Distributive Omit so each job variant keeps its own fields. */
export type JobBody = WorkerJob extends infer J ? (J extends WorkerJob ? Omit<J, 'id' | 'start' | 'end'> : never) : never;

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * Worker bootstrap: register tsx's ESM hooks inside the worker, then load worker.ts. (`--import` in a
 * worker's execArgv is not honoured for module hooks on Node 20, and under vitest there is no tsx.)
 */
function bootstrapCode(): string {
  const require = createRequire(import.meta.url);
  const api = pathToFileURL(require.resolve('tsx/esm/api').replace(/index\.cjs$/, 'index.mjs')).href;
  const worker = new URL('./worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(worker)}); })`;
}

export class WorkerPool {
  private workers: Worker[] = [];
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private inFlight = 0;

  constructor(readonly size: number) {}

  private start(): void {
    if (this.workers.length) return;
    const code = bootstrapCode();
    for (let i = 0; i < this.size; i++) {
      const w = new Worker(code, { eval: true });
      w.on('message', (msg: { id: number; error?: string }) => {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        this.done();
        if (msg.error) p.reject(new Error(`kernel worker failed: ${msg.error}`));
        else p.resolve();
      });
      w.on('error', (e) => this.failAll(e));
      // A worker that exits while jobs are pending (killed, out of memory) must not leave them hanging.
      w.on('exit', (code) => {
        if (this.pending.size > 0 && this.workers.includes(w)) this.failAll(new Error(`kernel worker exited with code ${code}`));
      });
      w.unref();
      this.workers.push(w);
    }
  }

  private done(): void {
    if (--this.inFlight === 0) for (const w of this.workers) w.unref();
  }

  private failAll(e: Error): void {
    for (const [, p] of this.pending) p.reject(e);
    this.pending.clear();
    this.inFlight = 0;
    const ws = this.workers;
    this.workers = [];
    for (const w of ws) void w.terminate();
  }

  /** Run `body` (or body(k)) over ranges[k] on worker k (k < size). */
  run(body: JobBody | ((k: number) => JobBody), ranges: Array<[number, number]>): Promise<void>[] {
    this.start();
    return ranges.map(([start, end], k) => {
      const b = typeof body === 'function' ? body(k) : body;
      const id = this.nextId++;
      const w = this.workers[k % this.workers.length];
      if (this.inFlight++ === 0) for (const x of this.workers) x.ref();
      return new Promise<void>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        w.postMessage({ ...b, id, start, end });
      });
    });
  }

  /** Ask every started worker to run a full garbage collection (fire and forget). */
  collectGarbage(): void {
    if (!this.workers.length) return;
    for (const p of this.run({ op: 'gc' }, this.workers.map(() => [0, 0] as [number, number]))) p.catch(() => {});
  }

  async close(): Promise<void> {
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }
}
