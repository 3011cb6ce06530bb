import type { Writable } from 'node:stream';
import type { Executor, ExecutorName } from '../executor.js';
import type { Experiment } from '../experiment.js';
import type { InterruptPolicy } from './slurm/executor.js';
import { LocalExecutor } from './local.js';
import { evalCapacity } from '../slots.js';

/** The executor a run asked for, checked and ready (Slurm's cluster checks happen here, before any planning). */

export interface ExecutorRequest {
  name: ExecutorName;
  exp: Experiment;
  expDir: string;
  jobs: number;
  backend: string;
  log: Writable;
  /** Slurm only: what Ctrl-C does with the jobs. */
  onInterrupt: InterruptPolicy;
}

export async function createExecutor(r: ExecutorRequest): Promise<Executor> {
  if (r.name === 'local') return new LocalExecutor({ jobs: r.jobs, backend: r.backend, log: r.log, gpus: r.exp.resources.gpus, evals: evalCapacity(r.exp, r.jobs) });
  const { SlurmExecutor } = await import('./slurm/executor.js');
  const { slurmClient } = await import('./slurm/commands.js');
  const { checkCluster } = await import('./slurm/check.js');
  await checkCluster({ config: r.exp.executor, client: slurmClient, expDir: r.expDir, models: Object.values(r.exp.models), where: r.exp.where, file: r.exp.file });
  return new SlurmExecutor({ config: r.exp.executor, expDir: r.expDir, experiment: r.exp.name, experimentFile: r.exp.file, backend: r.backend, onInterrupt: r.onInterrupt });
}
