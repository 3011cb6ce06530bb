import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../../util/atomic.js';
import type { WorkKind } from '../../graph.js';
import type { Task } from '../../tasks.js';
import { elementId, type ElementId } from './parse.js';

/**
 * What mergelab submitted to Slurm for one experiment, kept in `reports/EXP/slurm/`:
 *
 *   jobs.json        every submission of the sweep in progress: its array's task ids, the
 *                    indices submitted, the job id once sbatch returned it. A submission is
 *                    written BEFORE sbatch runs (with its unique job name and no id), so a
 *                    mergelab killed in between finds the job again by name instead of
 *                    submitting it twice.
 *   tasks.json       task id -> task, read by `mergelab task` on the nodes.
 *   GROUP-TOKEN.sh   each array's batch script, as submitted.
 *   logs/            one log per array element, GROUP-JOBID_INDEX.log.
 *
 * When a sweep ends, jobs.json becomes last-jobs.json: the next run starts a new campaign, with
 * fresh retry counts. Every write is atomic.
 */

export interface Submission {
  /** Unique per submission; part of the Slurm job name. */
  token: string;
  /** The Slurm job name (`mergelab.EXP.GROUP.TOKEN`). */
  name: string;
  kind: WorkKind;
  /** Tasks of one kind at one depth of the graph, e.g. `merge-0`, `eval-2`. */
  group: string;
  /** Array index -> task id (the batch script holds the same list). */
  tasks: string[];
  /** The indices this submission runs (all of them, or the ones being retried). */
  indices: number[];
  /** The batch script, relative to the slurm folder. */
  script: string;
  jobId: string | null;
  /** The dependency last given to Slurm for the array's pending elements. */
  dependency: string;
  submittedAt: string;
}

export interface JobsFile {
  version: 1;
  experiment: string;
  submissions: Submission[];
}

export class JobStore {
  private constructor(
    readonly dir: string,
    private data: JobsFile,
  ) {}

  static slurmDir(expDir: string): string {
    return path.join(expDir, 'slurm');
  }

  static async load(expDir: string, experiment: string): Promise<JobStore> {
    const dir = JobStore.slurmDir(expDir);
    let data: JobsFile = { version: 1, experiment, submissions: [] };
    try {
      const parsed = JSON.parse(await fs.readFile(path.join(dir, 'jobs.json'), 'utf8')) as JobsFile;
      if (parsed.version === 1 && Array.isArray(parsed.submissions)) data = parsed;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return new JobStore(dir, data);
  }

  get submissions(): readonly Submission[] {
    return this.data.submissions;
  }

  logsDir(): string {
    return path.join(this.dir, 'logs');
  }

  logFile(s: Submission, index: number): string {
    return path.join(this.logsDir(), `${s.group}-${s.jobId ?? 'unsubmitted'}_${index}.log`);
  }

  /** Where each task was last submitted: its submission and index. */
  latest(): Map<string, { sub: Submission; index: number; element: ElementId | null }> {
    const out = new Map<string, { sub: Submission; index: number; element: ElementId | null }>();
    for (const sub of this.data.submissions) for (const i of sub.indices) out.set(sub.tasks[i], { sub, index: i, element: sub.jobId ? elementId(sub.jobId, i) : null });
    return out;
  }

  /** How many times each task was submitted in this campaign. */
  attempts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const sub of this.data.submissions) for (const i of sub.indices) out.set(sub.tasks[i], (out.get(sub.tasks[i]) ?? 0) + 1);
    return out;
  }

  async add(sub: Submission): Promise<void> {
    this.data.submissions.push(sub);
    await this.save();
  }

  async update(sub: Submission, change: Partial<Pick<Submission, 'jobId' | 'dependency'>>): Promise<void> {
    Object.assign(sub, change);
    await this.save();
  }

  /** Forget submissions that never reached Slurm (no job under their name). */
  async drop(subs: Submission[]): Promise<void> {
    this.data.submissions = this.data.submissions.filter((s) => !subs.includes(s));
    await this.save();
  }

  async save(): Promise<void> {
    await writeFileAtomic(path.join(this.dir, 'jobs.json'), JSON.stringify(this.data, null, 1) + '\n');
  }

  /** The campaign is over: keep its record aside, start the next one empty. */
  async finish(): Promise<void> {
    if (this.data.submissions.length === 0) return;
    await fs.rename(path.join(this.dir, 'jobs.json'), path.join(this.dir, 'last-jobs.json')).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    this.data = { ...this.data, submissions: [] };
  }

  /** Add tasks to tasks.json (ids are content keys: the same id is the same work). */
  async publishTasks(tasks: Map<string, Task>, backend: string): Promise<void> {
    const file = tasksFile(path.dirname(this.dir));
    let known: TasksFile = { version: 1, backend, tasks: {} };
    try {
      known = JSON.parse(await fs.readFile(file, 'utf8')) as TasksFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const [id, t] of tasks) known.tasks[id] = t;
    known.backend = backend;
    await writeFileAtomic(file, JSON.stringify(known) + '\n');
  }
}

export interface TasksFile {
  version: 1;
  /** Kernel backend the tasks run with. */
  backend: string;
  tasks: Record<string, Task>;
}

export function tasksFile(expDir: string): string {
  return path.join(JobStore.slurmDir(expDir), 'tasks.json');
}
