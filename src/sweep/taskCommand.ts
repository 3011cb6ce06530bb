import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError, isUserError } from '../util/errors.js';
import { tasksFile, type TasksFile } from './executors/slurm/store.js';
import { runTask } from './tasks.js';
import type { Gpu } from '../eval/backends/config.js';

/**
 * `mergelab task EXPDIR --id ID`: run one task of a sweep's graph in this process, as a Slurm job
 * array element does (or a person re-running one task by hand). The task comes from
 * EXPDIR/slurm/tasks.json and leaves its result in the experiment's cache, like a worker's.
 * Start and end are logged with the time and host, so a job log shows what ran where and when.
 */

/**
 * The GPUs Slurm gave this job, as its processes must name them: CUDA_VISIBLE_DEVICES, which Slurm
 * sets per job (renumbered from 0 where cgroups confine the job to its GPUs, where the physical
 * indices of SLURM_JOB_GPUS would name devices the job cannot see); those indices only when it is
 * unset. A server the task starts inherits them.
 */
export function gpusGiven(env: NodeJS.ProcessEnv = process.env): Gpu[] {
  const raw = env.CUDA_VISIBLE_DEVICES ?? env.SLURM_STEP_GPUS ?? env.SLURM_JOB_GPUS ?? '';
  return raw
    .split(',')
    .map((x) => x.trim())
    .filter((x) => /^\d+$/.test(x) || /^(GPU|MIG)-[A-Za-z0-9-]+$/.test(x))
    .map((x) => (/^\d+$/.test(x) ? Number(x) : x));
}

async function loadTasks(expDir: string): Promise<TasksFile> {
  const file = tasksFile(expDir);
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as TasksFile;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UserError(`${file}: not found on ${os.hostname()}: \`mergelab run --executor slurm\` writes it before submitting, so this machine does not see the experiment folder (it must be on storage every node sees)`, { file });
    }
    throw new UserError(`${file}: cannot read the task list: ${(e as Error).message}`, { file });
  }
}

/** Runs the task; returns the process exit code (0 done, 1 failed). */
export async function runTaskCommand(expDirArg: string, id: string, out: (line: string) => void): Promise<number> {
  const expDir = path.resolve(expDirArg);
  const list = await loadTasks(expDir);
  const task = list.tasks[id];
  if (!task) throw new UserError(`${tasksFile(expDir)}: no task '${id}' (expected an id such as merge:KEY, eval:KEY or pd:KEY from that file)`, { field: '--id' });
  const gpus = gpusGiven();
  const job = process.env.SLURM_ARRAY_JOB_ID ? `${process.env.SLURM_ARRAY_JOB_ID}_${process.env.SLURM_ARRAY_TASK_ID}` : process.env.SLURM_JOB_ID;
  const t0 = Date.now();
  out(`mergelab task ${id}: start ${new Date(t0).toISOString()} on ${os.hostname()}${job ? ` (Slurm job ${job})` : ''}; gpus [${gpus.join(',')}]`);
  const backend = list.backend || 'auto';
  try {
    const { getKernels } = await import('../kernels/index.js');
    const r = await runTask(task, { kernels: () => getKernels(backend as Parameters<typeof getKernels>[0]), gpus, log: out });
    out(`mergelab task ${id}: end ${new Date().toISOString()}: ${r.alreadyDone ? 'already done' : 'done'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    out(`mergelab task ${id}: end ${new Date().toISOString()}: failed: ${message}`);
    if (!isUserError(e) && e instanceof Error && e.stack) out(e.stack);
    return 1;
  }
}
