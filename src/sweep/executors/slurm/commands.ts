import os from 'node:os';
import { execa } from 'execa';
import { UserError } from '../../../util/errors.js';
import { SQUEUE_FORMAT, parseScontrol, parseSqueue, type QueueEntry } from './parse.js';

/**
 * The Slurm client commands mergelab uses: sbatch, squeue, scontrol, scancel. No sacct: it needs
 * the accounting database, which many clusters do not run; what a finished job did is read from
 * `scontrol -o show job` while Slurm still holds it (MinJobAge) and from the job's log.
 */

export class SlurmCommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`${command}: ${stderr.trim() || 'failed'}`);
  }
}

async function run(cmd: string, args: string[], input?: string): Promise<string> {
  let r;
  try {
    r = await execa(cmd, args, { input, reject: false, timeout: 120_000 });
  } catch (e) {
    throw new SlurmCommandError(`${cmd} ${args.join(' ')}`, (e as Error).message);
  }
  if ((r as { code?: string }).code === 'ENOENT' || (r.failed && /ENOENT/.test(String(r.message)))) {
    throw new UserError(`--executor slurm: the Slurm command \`${cmd}\` is not on PATH; run mergelab on a machine that can submit jobs (a login node)`, { field: 'executor' });
  }
  if (r.exitCode !== 0) throw new SlurmCommandError(`${cmd} ${args.join(' ')}`, `${r.stderr || r.stdout}`);
  return String(r.stdout);
}

export interface SlurmClient {
  /** Submit a batch script (given on stdin); returns the job id. */
  sbatch(args: string[], script: string): Promise<string>;
  /** This user's live array elements among jobs with these names. */
  queue(names: string[]): Promise<QueueEntry[]>;
  /** `scontrol -o show KIND [ID]` records; an unknown id gives []. */
  show(kind: 'job' | 'partition' | 'node', id?: string): Promise<Array<Record<string, string>>>;
  /** The host names a Slurm host list (`node[01-04],gpu7`) stands for. */
  hostnames(list: string): Promise<string[]>;
  setDependency(jobId: string, dependency: string): Promise<void>;
  cancel(ids: string[]): Promise<void>;
}

export const slurmClient: SlurmClient = {
  async sbatch(args, script) {
    const out = await run('sbatch', ['--parsable', ...args], script);
    // `--parsable` prints `JOBID` or `JOBID;CLUSTER`.
    const id = out.trim().split('\n').pop()!.split(';')[0];
    if (!/^\d+$/.test(id)) throw new SlurmCommandError('sbatch', `unexpected output: ${out}`);
    return id;
  },
  async queue(names) {
    if (names.length === 0) return [];
    const user = os.userInfo().username;
    return parseSqueue(await run('squeue', ['-h', '-r', '-u', user, '--name', names.join(','), '-o', SQUEUE_FORMAT]));
  },
  async show(kind, id) {
    try {
      return parseScontrol(await run('scontrol', ['-o', 'show', kind, ...(id ? [id] : [])]));
    } catch (e) {
      if (e instanceof SlurmCommandError && /Invalid (job|partition|node)|not found/i.test(e.stderr)) return [];
      throw e;
    }
  },
  async hostnames(list) {
    return (await run('scontrol', ['show', 'hostnames', list])).split('\n').map((l) => l.trim()).filter(Boolean);
  },
  async setDependency(jobId, dependency) {
    await run('scontrol', ['update', `JobId=${jobId}`, `Dependency=${dependency}`]);
  },
  async cancel(ids) {
    if (ids.length) await run('scancel', ids);
  },
};
