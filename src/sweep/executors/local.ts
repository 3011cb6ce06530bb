import type { Writable } from 'node:stream';
import { UserError } from '../../util/errors.js';
import type { ExecutionContext, ExecutionEnd, Executor } from '../executor.js';
import { WorkerPool } from '../pool.js';
import type { Outcome, Scheduler } from '../scheduler.js';
import { Slots } from '../slots.js';
import type { Task } from '../tasks.js';

/**
 * The local executor: N worker processes on this machine (tfjs wasm runs one thread per process).
 * Ready nodes start as slots free up, evaluations first; a node that needs GPUs is given device
 * indices from `gpus`.
 */

/** What runs a task: the worker pool (a test may hand in its own). */
export interface TaskRunner {
  run(task: Task, opts: { gpus: number[] }): Promise<{ seconds: number; alreadyDone: boolean }>;
  close(): Promise<void>;
}

export interface LocalOptions {
  jobs: number;
  /** Device indices of this machine's GPUs that tasks may be given (none by default). */
  gpus?: readonly number[];
  backend: string;
  log?: Writable;
  runner?: TaskRunner;
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
    const slots = new Slots({ cpus: this.opts.jobs, gpus: this.opts.gpus ?? [] });
    const drain = ctx.drain;
    const tooBig = [...s.graph.work.values()].find((n) => !slots.admits(n.resources));
    if (tooBig) {
      throw new UserError(`${tooBig.label} needs ${tooBig.resources.gpus} GPU(s) and ${tooBig.resources.cpus} CPU slot(s); this machine offers ${slots.capacity.gpus.length} GPU(s) and ${slots.capacity.cpus} worker(s) (--jobs)`);
    }
    const pool: TaskRunner = this.opts.runner ?? new WorkerPool(this.opts.jobs, { backend: this.opts.backend, log: this.opts.log, onTokens: (n) => ctx.tokens?.(n) });
    let aborted = signal?.aborted ?? false;
    await new Promise<void>((resolveAll) => {
      let inFlight = 0;
      const onAbort = (): void => {
        aborted = true;
        // Workers leave when their channel closes; what they were doing is abandoned (outputs are atomic).
        void pool.close().then(() => resolveAll());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const pump = (): void => {
        if (aborted) return;
        for (const n of s.ready()) {
          if (slots.full || drain?.aborted) break;
          if (!slots.fits(n.resources)) continue;
          const alloc = slots.take(n.resources);
          s.markRunning(n.id);
          ctx.changed();
          inFlight++;
          pool
            .run(n.task, { gpus: alloc.gpus })
            .then(
              (r): Outcome => ({ ok: true, seconds: r.seconds, alreadyDone: r.alreadyDone }),
              (e: Error): Outcome => ({ ok: false, error: e.message }),
            )
            .then(async (outcome) => {
              if (aborted) return;
              slots.give(alloc);
              await s.settle(n.id, outcome);
              inFlight--;
              pump();
            });
        }
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
