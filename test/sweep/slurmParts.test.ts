import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseExperiment } from '../../src/sweep/experiment.js';
import { jobEnds, parseScontrolLine, parseSqueue } from '../../src/sweep/executors/slurm/parse.js';
import { arraySpec, batchScript, resourceFlags, shellQuote } from '../../src/sweep/executors/slurm/script.js';
import { sharedFsProblems } from '../../src/sweep/executors/slurm/sharedfs.js';
import { UserError } from '../../src/util/errors.js';
import { gpusGiven } from '../../src/sweep/taskCommand.js';
import { REPO, tempDir } from './helpers.js';

/** Lines captured from Slurm 22.05 (Debian 12) on the test cluster. */
const JOB_LINE =
  'JobId=5 ArrayJobId=1 ArrayTaskId=1 JobName=mergelab.small.merge-0.ab12cd34 UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:03 TimeLimit=UNLIMITED NodeList=localhost BatchHost=localhost WorkDir=/tmp/x StdErr=/tmp/x/out/a_1_1.log StdOut=/tmp/x/out/a_1_1.log';
const NODE_LINE =
  'NodeName=localhost Arch=x86_64 CoresPerSocket=1 CPUAlloc=0 Gres=gpu:2 NodeAddr=localhost NodeHostName=localhost Version=22.05.8 OS=Linux 6.18.44-fc-v1147 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=1000 State=IDLE Reason=gres/gpu count reported lower than configured (0 < 2) [root@2026-12-03T09:49:50]';

describe('Slurm output parsing', () => {
  it('reads scontrol -o lines, values with spaces included', () => {
    const j = parseScontrolLine(JOB_LINE);
    expect(j.JobState).toBe('FAILED');
    expect(j.ExitCode).toBe('3:0');
    expect(j.JobName).toBe('mergelab.small.merge-0.ab12cd34');
    const n = parseScontrolLine(NODE_LINE);
    expect(n.OS).toBe('Linux 6.18.44-fc-v1147 #1 SMP PREEMPT_DYNAMIC @0');
    expect(n.RealMemory).toBe('1000');
    expect(n.Reason).toBe('gres/gpu count reported lower than configured (0 < 2) [root@2026-12-03T09:49:50]');
  });

  it('maps finished array elements to their end state and log', () => {
    const ends = jobEnds([parseScontrolLine(JOB_LINE), parseScontrolLine('JobId=2 ArrayJobId=2 ArrayTaskId=0-1 JobState=PENDING')]);
    expect([...ends.keys()]).toEqual(['1_1']);
    expect(ends.get('1_1')).toEqual({ element: '1_1', state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '3:0', node: 'localhost', stdout: '/tmp/x/out/a_1_1.log' });
  });

  it('reads squeue -r lines of array elements and ignores other jobs', () => {
    expect(parseSqueue('1_0|RUNNING|None|localhost\n1_1|PENDING|Resources|\n7|RUNNING|None|localhost\n')).toEqual([
      { element: '1_0', state: 'RUNNING', reason: 'None', node: 'localhost' },
      { element: '1_1', state: 'PENDING', reason: 'Resources', node: '' },
    ]);
  });
});

describe('job arrays', () => {
  it('writes index lists as ranges', () => {
    expect(arraySpec([0, 1, 2, 3, 5, 7, 8, 9])).toBe('0-3,5,7-9');
    expect(arraySpec([4])).toBe('4');
    expect(arraySpec([2, 1, 1])).toBe('1-2');
  });

  it('puts the task list in the script and quotes what the shell would split', () => {
    const s = batchScript({ experiment: 'e', group: 'eval-1', expDir: "/data/it's here", tasks: ['eval:aa', 'eval:bb'], setup: ['module load nodejs/20'] });
    expect(s.startsWith('#!/bin/bash\n')).toBe(true);
    expect(s).toContain('TASKS=(\n  eval:aa\n  eval:bb\n)\nexport MERGELAB_TASK_ID="${TASKS[$SLURM_ARRAY_TASK_ID]}"\nmodule load nodejs/20\nexec ');
    expect(s).toContain(` '/data/it'\\''s here' --id "$MERGELAB_TASK_ID"\n`);
    expect(shellQuote('a b')).toBe(`'a b'`);
  });

  it('a task takes its GPUs as Slurm names them for the job: CUDA_VISIBLE_DEVICES first, UUIDs kept', () => {
    // Under cgroups Slurm renumbers the job's GPUs from 0; the physical indices would name devices the job cannot see.
    expect(gpusGiven({ CUDA_VISIBLE_DEVICES: '0,1', SLURM_JOB_GPUS: '2,3' })).toEqual([0, 1]);
    expect(gpusGiven({ SLURM_JOB_GPUS: '2,3' })).toEqual([2, 3]);
    expect(gpusGiven({ CUDA_VISIBLE_DEVICES: 'MIG-1f2e3d4c-aaaa-bbbb-cccc-0123456789ab' })).toEqual(['MIG-1f2e3d4c-aaaa-bbbb-cccc-0123456789ab']);
    expect(gpusGiven({})).toEqual([]);
  });

  it('asks for GPUs a task needs unless the settings say otherwise', () => {
    const r = { cpus: 1, gpus: 1, evals: 0, ports: 0, diskBytes: 0 };
    expect(resourceFlags({ sbatch: [], setup: [] }, r)).toEqual(['--cpus-per-task=1', '--gres=gpu:1']);
    expect(resourceFlags({ sbatch: ['--qos=x'], setup: [], gres: null, partition: 'p', account: 'a', time: '1:00:00', mem: '8G', cpusPerTask: 4 }, r)).toEqual(['--partition=p', '--account=a', '--time=1:00:00', '--cpus-per-task=4', '--mem=8G', '--qos=x']);
    expect(resourceFlags({ sbatch: [], setup: [], gres: 'gpu:a100:2' }, { ...r, gpus: 0 })).toEqual(['--cpus-per-task=1', '--gres=gpu:a100:2']);
  });
});

describe('the array element entry point', () => {
  it("is the build's taskMain.js when mergelab runs from dist/, and exits as `mergelab task` does: 1 for a usage mistake or a folder without a task list, no stack", async () => {
    // What a Slurm job runs when mergelab itself runs from the build (bin/mergelab.js).
    const shown = await execa('node', ['--input-type=module', '-e', "const m = await import('./dist/sweep/executors/slurm/script.js'); console.log(JSON.stringify(m.taskCommand()))"], { cwd: REPO });
    const cmd = JSON.parse(shown.stdout) as string[];
    expect(cmd).toEqual([process.execPath, path.join(REPO, 'dist', 'sweep', 'taskMain.js')]);
    await fs.access(cmd[1]);
    const usage = await execa(cmd[0], [cmd[1], '/tmp'], { reject: false });
    expect(usage.exitCode).toBe(1);
    expect(usage.stderr).toBe('usage: taskMain EXPDIR --id ID (the same as `mergelab task EXPDIR --id ID`)');
    const dir = await tempDir('task-main');
    const element = await execa(cmd[0], [cmd[1], dir, '--id', 'eval:x'], { reject: false });
    const byHand = await execa('node', [path.join(REPO, 'bin', 'mergelab.js'), 'task', dir, '--id', 'eval:x'], { reject: false });
    expect(element.exitCode).toBe(1);
    expect(element.stderr).toMatch(new RegExp(`^mergelab: ${path.join(dir, 'slurm', 'tasks.json')}: not found on \\S+: \`mergelab run --executor slurm\` writes it before submitting`));
    expect(element.stderr).not.toMatch(/\n\s+at /);
    expect([byHand.exitCode, byHand.stderr]).toEqual([element.exitCode, element.stderr]);
  });
});

describe('shared storage check', () => {
  const local = new Set(['localhost', 'vm', '10.0.0.5']);
  const folders = [
    { what: 'the experiment folder', dir: '/scratch/r', fsType: 'ext4' },
    { what: 'model base', dir: '/nfs/models/base', fsType: 'nfs4' },
  ];
  it('accepts anything when every node is this machine', () => {
    expect(sharedFsProblems(folders, [{ name: 'n1', host: 'vm', addr: '10.0.0.5' }], local)).toEqual([]);
  });
  it('refuses a local filesystem when a node is elsewhere, and names it', () => {
    const p = sharedFsProblems(folders, [{ name: 'gpu01', host: 'gpu01', addr: '10.0.1.1' }], local);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^the experiment folder \/scratch\/r is on a ext4 filesystem of this machine \(.*\), but the jobs run on gpu01: it must be on storage every node sees/);
  });
});

describe('executor block of an experiment file', () => {
  let zoo: string;
  beforeAll(async () => {
    zoo = await tempDir('exec-zoo');
    for (const m of ['base', 'math']) await fs.mkdir(path.join(zoo, m));
  });
  const file = (executor: string) => `name: t
models: {base: zoo:base, math: zoo:math}
eval: {suites: [lm]}
recipe: |
  merge_method: linear
  models:
    - model: \${base}
      parameters: {weight: 0.5}
    - model: \${math}
      parameters: {weight: 0.5}
executor:
${executor}
`;

  it('resolves common and per-kind settings', async () => {
    const exp = await parseExperiment(file('  kind: slurm\n  partition: cpu\n  time: 90\n  mem: 16G\n  sbatch: [--qos=low]\n  retries: 2\n  eval: {partition: gpu, gres: "gpu:1", sbatch: [--constraint=a100]}\n  merge: {gres: null}'), 'exp.yaml', { zooDir: zoo });
    expect(exp.executor.kind).toBe('slurm');
    expect(exp.executor.retries).toBe(2);
    expect(exp.executor.jobs.merge).toEqual({ partition: 'cpu', account: undefined, time: '90', cpusPerTask: undefined, mem: '16G', gres: null, sbatch: ['--qos=low'], setup: [] });
    expect(exp.executor.jobs.eval).toMatchObject({ partition: 'gpu', gres: 'gpu:1', sbatch: ['--qos=low', '--constraint=a100'] });
    const plain = await parseExperiment(file('  kind: local'), 'exp.yaml', { zooDir: zoo });
    expect(plain.executor).toMatchObject({ kind: 'local', retries: 1, pollSeconds: 5, sharedFs: false });
  });

  it('names file, line, field and what was expected', async () => {
    const e = await parseExperiment(file('  kind: pbs\n  time: 1h\n  mem: lots\n  gres: "gpu 1"\n  sbatch: [--array=0-3, qos]\n  retries: -1\n  eval: {cpus: 4}'), 'exp.yaml', { zooDir: zoo }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg).toMatch(/exp\.yaml:12:9: field executor\.kind: expected local or slurm/);
    expect(msg).toMatch(/exp\.yaml:13:9: field executor\.time: expected a time limit as Slurm writes it/);
    expect(msg).toMatch(/exp\.yaml:14:8: field executor\.mem: expected memory per node/);
    expect(msg).toMatch(/exp\.yaml:15:9: field executor\.gres: expected generic resources/);
    expect(msg).toMatch(/exp\.yaml:16:\d+: field executor\.sbatch\[0\]: --array is set by mergelab on every job/);
    expect(msg).toMatch(/exp\.yaml:16:\d+: field executor\.sbatch\[1\]: expected an sbatch flag/);
    expect(msg).toMatch(/field executor\.retries: /);
    expect(msg).toMatch(/field executor\.eval\.cpus: unknown field 'cpus'/);
  });
});
