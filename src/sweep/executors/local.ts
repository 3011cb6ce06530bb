import type { Writable } from 'node:stream';
import { UserError } from '../../util/errors.js';
import type { ExecutionContext, ExecutionEnd, Executor } from '../executor.js';
import { WorkerPool } from '../pool.js';
import type { Outcome, Scheduler } from '../scheduler.js';
import { Slots } from '../slots.js';
import { PortPool } from '../ports.js';
import type { Task } from '../tasks.js';
import type { WorkNode } from '../graph.js';
import type { Gpu } from '../../eval/backends/config.js';

/**
 * The local executor: worker processes on this machine (tfjs wasm runs one thread per process).
 * Ready nodes start as slots free up, evaluations first: merges and built-in evaluations take a
 * CPU slot; an evaluation by a server or a program of its own takes an evaluation slot instead
 * (its worker only waits), with its GPUs from `gpus` and a port from the sweep's port pool, so
 * the next points' merges run beside it. A merge also waits for the disk bound
 * (max_models_on_disk, the scheduler's gate). A CPU slot that nothing ready can take (the tail of
 * a run, work waiting on a running stage or on the disk bound) is lent to the running built-in
 * evaluations, which may then use one more thread each; the slot is taken back as soon as a node
 * can start. Evaluations by another backend hold no CPU slot and are lent none.
 */

/** What runs a task: the worker pool (a test may hand in its own). */
export interface TaskRunner {
  run(task: Task, opts: { gpus: Gpu[]; port?: number }): Promise<{ seconds: number; alreadyDone: boolean }>;
  /** The running task may use this many threads from now on (1: its own slot only). */
  setThreads?(task: Task, threads: number): void;
  close(): Promise<void>;
}

/** Threads for each running evaluation: 1, plus an even share of the idle CPU slots (the first ones get the remainder). */
export function lendIdle(evals: number, idleCpus: number): number[] {
  if (evals === 0) return [];
  const share = Math.floor(idleCpus / evals);
  return Array.from({ length: evals }, (_, i) => 1 + share + (i < idleCpus % evals ? 1 : 0));
}

export interface LocalOptions {
  jobs: number;
  /** The GPUs tasks may be given (CUDA_VISIBLE_DEVICES names; none by default). */
  gpus?: readonly Gpu[];
  /** Evaluations by other backends than the built-in one at once (0 when the sweep has none). */
  evals?: number;
  backend: string;
  log?: Writable;
  runner?: TaskRunner;
  /** Where ports for started servers come from (default: the OS, never one a running task holds). */
  ports?: PortPool;
}

export class LocalExecutor implements Executor {
  readonly name = 'local' as const;

  constructor(private readonly opts: LocalOptions) {}

  async busy(): Promise<string | null> {
    // Workers of a killed local run leave by themselves when their parent's channel closes.
    return null;
  }

  async run(s: Scheduler, ctx: ExecutionContext = { log() {}, changed() {} }): Promise<ExecutionEnd> {
    const signal = ctx.signal;
    const evals = this.opts.evals ?? 0;
    const slots = new Slots({ cpus: this.opts.jobs, evals, gpus: this.opts.gpus ?? [] });
    const ports = this.opts.ports ?? new PortPool();
    const drain = ctx.drain;
    const tooBig = [...s.graph.work.values()].find((n) => !slots.admits(n.resources));
    if (tooBig) {
      const r = tooBig.resources;
      throw new UserError(`${tooBig.label} needs ${r.gpus} GPU(s), ${r.cpus} CPU slot(s) and ${r.evals} evaluation slot(s); this machine offers ${slots.capacity.gpus.length} GPU(s) (resources.gpus), ${slots.capacity.cpus} worker(s) (--jobs) and ${evals} evaluation slot(s)`);
    }
    // A worker per CPU slot, and one per evaluation slot to wait on its server or program.
    const pool: TaskRunner = this.opts.runner ?? new WorkerPool(this.opts.jobs + evals, { backend: this.opts.backend, log: this.opts.log, onTokens: (n) => ctx.tokens?.(n) });
    let aborted = signal?.aborted ?? false;
    /** Running built-in evaluations (they hold a CPU slot), in start order, with the threads each was last told it may use. */
    const lendable = new Map<string, { task: Task; threads: number }>();
    const lend = (): void => {
      if (!pool.setThreads) return;
      const running = [...lendable.values()];
      const threads = lendIdle(running.length, aborted ? 0 : slots.freeCpus);
      running.forEach((r, i) => {
        if (r.threads === threads[i]) return;
        r.threads = threads[i];
        pool.setThreads!(r.task, r.threads);
      });
    };
    await new Promise<void>((resolveAll) => {
      let inFlight = 0;
      const onAbort = (): void => {
        aborted = true;
        // Workers leave when their channel closes; what they were doing is abandoned (outputs are atomic).
        void pool.close().then(() => resolveAll());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const start = (n: WorkNode): void => {
        const alloc = slots.take(n.resources);
        s.markRunning(n.id);
        ctx.changed();
        inFlight++;
        if (n.kind === 'eval' && n.resources.cpus > 0) lendable.set(n.id, { task: n.task, threads: 1 });
        (async (): Promise<Outcome> => {
          const port = n.resources.ports > 0 ? await ports.take() : undefined;
          try {
            const r = await pool.run(n.task, { gpus: alloc.gpus, ...(port !== undefined ? { port } : {}) });
            return { ok: true, seconds: r.seconds, alreadyDone: r.alreadyDone };
          } finally {
            if (port !== undefined) ports.give(port);
          }
        })()
          .catch((e: Error): Outcome => ({ ok: false, error: e.message }))
          .then(async (outcome) => {
            lendable.delete(n.id);
            if (aborted) return;
            slots.give(alloc);
            await s.settle(n.id, outcome);
            inFlight--;
            pump();
          });
      };
      const pump = (): void => {
        if (aborted) return;
        let gated: WorkNode | null = null;
        for (const n of s.ready()) {
          if (drain?.aborted) break;
          if (!slots.fits(n.resources)) continue;
          if (!s.admits(n)) {
            gated ??= n;
            continue;
          }
          start(n);
        }
        // Checkpoints left on disk by an interrupted run can fill the bound with folders whose
        // readers are merges: with nothing running, nothing would ever free a place.
        if (inFlight === 0 && gated && !drain?.aborted) {
          ctx.log(`max_models_on_disk ${s.disk?.limit}: ${s.disk?.used} checkpoints already on disk; starting ${gated.label} beyond the bound, as nothing else can run`);
          start(gated);
        }
        lend();
        if (inFlight === 0 && (drain?.aborted || s.ready().length === 0)) {
          signal?.removeEventListener('abort', onAbort);
          resolveAll();
        }
      };
      drain?.addEventListener('abort', () => pump(), { once: true });
      if (aborted) onAbort();
      else pump();
    });
    if (aborted) return { interrupted: true, note: 'interrupted: workers stopped; run again to resume from the cache' };
    await pool.close();
    if (drain?.aborted && s.unrecorded().length > 0) return { interrupted: true, note: 'interrupted: the running tasks finished, no other started; run again to resume from the cache' };
    return { interrupted: false };
  }
}
