import type { Scheduler } from './scheduler.js';

/**
 * An executor runs the work nodes of a scheduler's graph and reports each outcome to it. `local`
 * runs them on worker processes of this machine; `slurm` hands them to a cluster as job arrays.
 */

export type ExecutorName = 'local' | 'slurm';
export const EXECUTOR_NAMES: readonly ExecutorName[] = ['local', 'slurm'];

export type ExecutionEnd =
  /** Every node settled. */
  | { interrupted: false }
  /** The signal aborted the run; `note` says what was left behind (jobs still queued, ...). */
  | { interrupted: true; note: string };

export interface Executor {
  readonly name: ExecutorName;
  /** May the cache's tmp/ be cleared (no task of an earlier run still writes there)? */
  tmpIsIdle(): Promise<boolean>;
  /** `signal`: stop now; `drain`: start nothing more and end when what runs has settled. */
  run(scheduler: Scheduler, signal?: AbortSignal, drain?: AbortSignal): Promise<ExecutionEnd>;
}
