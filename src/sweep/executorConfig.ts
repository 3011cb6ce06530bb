import { z } from 'zod';
import type { ExecutorName, WorkKind } from './kinds.js';

/**
 * The `executor:` block of an experiment file: which executor runs the sweep (`--executor`
 * overrides it) and how Slurm jobs are requested, for all tasks or per kind of task:
 *
 *   executor:
 *     kind: slurm                # or local (the default)
 *     partition: gpu
 *     account: my-lab
 *     time: "04:00:00"           # minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S
 *     cpus_per_task: 4
 *     mem: 32G
 *     gres: gpu:1
 *     sbatch: [--qos=normal]     # more sbatch flags, passed as given
 *     setup: [module load nodejs/20]   # shell lines run before each task
 *     retries: 1                 # resubmissions of a failed task
 *     poll_seconds: 10           # how often squeue is asked
 *     merge: {partition: cpu, gres: null, mem: 64G}   # per kind: merge, eval, pointdiag
 */

/** Flags mergelab sets on every job itself; giving them again would break its bookkeeping. */
const RESERVED_FLAGS = ['--array', '-a', '--dependency', '-d', '--job-name', '-J', '--output', '-o', '--error', '-e', '--parsable', '--wrap', '--chdir', '-D', '--kill-on-invalid-dep', '--open-mode'];

const TIME_RE = /^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})$/;
const MEM_RE = /^\d+[KMGT]?$/i;
const TIME_EXPECTED = 'expected a time limit as Slurm writes it: minutes, "M:S", "H:M:S", "D-H", "D-H:M" or "D-H:M:S"';
const MEM_EXPECTED = 'expected memory per node as Slurm writes it: megabytes, or a number with K, M, G or T (32G)';
const GRES_ONE = '[A-Za-z0-9_]+(?::[A-Za-z0-9_.-]+){0,2}';
const GRES_RE = new RegExp(`^${GRES_ONE}(?:,${GRES_ONE})*$`);

const jobFields = {
  partition: z.string().regex(/^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/, { error: 'expected a partition name (or several, comma-separated)' }).optional(),
  account: z.string().min(1, { error: 'expected an account name' }).optional(),
  time: z
    .union([z.number().int().positive(), z.string().regex(TIME_RE, { error: TIME_EXPECTED })], { error: TIME_EXPECTED })
    .transform(String)
    .optional(),
  cpus_per_task: z.number({ error: 'expected a whole number of CPUs >= 1' }).int({ error: 'expected a whole number of CPUs >= 1' }).positive({ error: 'expected a whole number of CPUs >= 1' }).optional(),
  mem: z
    .union([z.number().int().positive(), z.string().regex(MEM_RE, { error: MEM_EXPECTED })], { error: MEM_EXPECTED })
    .transform(String)
    .optional(),
  gres: z.string().regex(GRES_RE, { error: 'expected generic resources as Slurm writes them: name[:type]:count, comma-separated (gpu:1, gpu:a100:2)' }).nullable().optional(),
  sbatch: z
    .array(z.string().regex(/^--?[A-Za-z]/, { error: 'expected an sbatch flag (starting with - or --), e.g. --qos=normal' }), { error: 'expected a list of sbatch flags' })
    .superRefine((flags, ctx) => {
      flags.forEach((f, i) => {
        const name = f.split('=')[0];
        const bad = RESERVED_FLAGS.find((r) => name === r || (r.length === 2 && f.startsWith(r) && !f.startsWith('--')));
        if (bad) ctx.addIssue({ code: 'custom', path: [i], message: `${bad} is set by mergelab on every job (it names, chains and logs the job arrays); leave it out` });
      });
    })
    .optional(),
  setup: z.array(z.string(), { error: 'expected a list of shell lines' }).optional(),
};

const JobSchema = z.strictObject(jobFields, { error: 'expected a mapping of job settings (partition, account, time, cpus_per_task, mem, gres, sbatch, setup)' });

export const ExecutorSchema = z.strictObject(
  {
    kind: z.enum(['local', 'slurm'], { error: 'expected local or slurm' }).optional(),
    ...jobFields,
    retries: z.number({ error: 'expected a whole number from 0 to 20' }).int({ error: 'expected a whole number from 0 to 20' }).min(0).max(20, { error: 'expected a whole number from 0 to 20' }).optional(),
    poll_seconds: z.number({ error: 'expected seconds > 0' }).positive({ error: 'expected seconds > 0' }).optional(),
    /** The experiment's folder is on storage every node sees although mergelab cannot tell (skips the check). */
    shared_fs: z.boolean({ error: 'expected true or false' }).optional(),
    merge: JobSchema.optional(),
    eval: JobSchema.optional(),
    pointdiag: JobSchema.optional(),
  },
  { error: 'expected a mapping with kind (local or slurm) and Slurm job settings' },
);
export type RawExecutor = z.output<typeof ExecutorSchema>;

/** How one kind of task is requested from Slurm. */
export interface JobSettings {
  partition?: string;
  account?: string;
  time?: string;
  cpusPerTask?: number;
  mem?: string;
  /** null: no generic resources, even where the common settings ask for some. */
  gres?: string | null;
  sbatch: string[];
  setup: string[];
}

export interface ExecutorConfig {
  kind: ExecutorName;
  retries: number;
  pollSeconds: number;
  sharedFs: boolean;
  jobs: Record<WorkKind, JobSettings>;
}

export const DEFAULT_RETRIES = 1;
export const DEFAULT_POLL_SECONDS = 5;

type RawJob = z.output<typeof JobSchema>;

function settings(common: RawJob, own: RawJob | undefined): JobSettings {
  const pick = <K extends keyof RawJob>(k: K): RawJob[K] => (own && own[k] !== undefined ? own[k] : common[k]);
  return {
    partition: pick('partition'),
    account: pick('account'),
    time: pick('time'),
    cpusPerTask: pick('cpus_per_task'),
    mem: pick('mem'),
    gres: pick('gres'),
    // Extra flags and setup lines add up: the common ones, then the kind's own.
    sbatch: [...(common.sbatch ?? []), ...(own?.sbatch ?? [])],
    setup: [...(common.setup ?? []), ...(own?.setup ?? [])],
  };
}

export function resolveExecutor(raw: RawExecutor | undefined): ExecutorConfig {
  const r = raw ?? {};
  const common: RawJob = { partition: r.partition, account: r.account, time: r.time, cpus_per_task: r.cpus_per_task, mem: r.mem, gres: r.gres, sbatch: r.sbatch, setup: r.setup };
  return {
    kind: r.kind ?? 'local',
    retries: r.retries ?? DEFAULT_RETRIES,
    pollSeconds: r.poll_seconds ?? DEFAULT_POLL_SECONDS,
    sharedFs: r.shared_fs ?? false,
    jobs: { merge: settings(common, r.merge), eval: settings(common, r.eval), pointdiag: settings(common, r.pointdiag) },
  };
}
