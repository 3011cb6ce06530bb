import type { Scheduler } from './scheduler.js';
import type { ExecutorName } from './kinds.js';

/**
 * An executor runs the work nodes of a scheduler's graph and reports each outcome to it. `local`
 * runs them on worker processes of this machine; `slurm` hands them to a cluster as job arrays.
 */

export { EXECUTOR_NAMES, type ExecutorName } from './kinds.js';

export type ExecutionEnd =
  /** Every node settled. */
  | { interrupted: false }
  /** The signal aborted the run; `note` says what was left behind (jobs still queued, ...). */
  | { interrupted: true; note: string };

export interface ExecutionContext {
  /** Stop now: running tasks are abandoned (their outputs are atomic, so nothing half-written stays). */
  signal?: AbortSignal;
  /** Start nothing more, and end once what runs has settled (a first Ctrl-C). */
  drain?: AbortSignal;
  /** A line for the run's output (submissions, retries), shown above the progress bar. */
  log(line: string): void;
  /** Something the progress display shows changed (a task started). */
  changed(): void;
  /** Tokens an evaluation processed (the progress display's tokens/s); executors that cannot see them never call it. */
  tokens?(n: number): void;
}

export interface Executor {
  readonly name: ExecutorName;
  /**
   * Work of an earlier run of this experiment still going on (Slurm jobs still queued or
   * running), described; null when there is none. While there is, the cache's tmp/ is in use.
   */
  busy(): Promise<string | null>;
  run(scheduler: Scheduler, ctx: ExecutionContext): Promise<ExecutionEnd>;
}
