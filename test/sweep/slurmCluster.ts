import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

/**
 * A single-node Slurm on localhost for the tests, from Debian's packages (slurmctld, slurmd,
 * slurm-client, munge; `scripts/install-system-deps.sh` installs them on CI), run directly
 * without systemd: munged as the munge user, then slurmctld and slurmd in the foreground as
 * children of the test. Its state, sockets, keys and logs live in a temporary folder the test
 * owns; `stop()` cancels every job, stops the three daemons and removes the folder.
 *
 * The node has the machine's two cores, oversubscribed five times (small jobs share them) and,
 * when asked, fake GPUs (/dev/null, /dev/zero: Slurm counts and hands them out, nothing uses them).
 * A second partition `far` has one node on another (non-existent) host, for the shared-storage
 * check. Finished jobs stay visible to `scontrol -o show job` for MinJobAge seconds.
 */

export interface SlurmCluster {
  dir: string;
  /** Environment for Slurm's client commands and for mergelab (SLURM_CONF). */
  env: Record<string, string>;
  /** Seconds from starting munged to the node being idle. */
  startSeconds: number;
  /** Every job Slurm still holds, one record per array element (`scontrol -o show job`). */
  jobs(): Promise<Array<Record<string, string>>>;
  stop(): Promise<void>;
}

const BINARIES = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'scancel', 'sinfo'];

async function which(bin: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      await fs.access(path.join(dir, bin), fs.constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** Why the test cluster cannot start here, or null. */
export async function slurmUnavailable(): Promise<string | null> {
  if (process.platform !== 'linux') return 'Slurm tests need Linux';
  if (process.getuid?.() !== 0) return 'Slurm tests need root (they start slurmctld, slurmd and munged)';
  const missing: string[] = [];
  for (const b of BINARIES) if (!(await which(b))) missing.push(b);
  if (missing.length) return `Slurm is not installed (${missing.join(', ')} missing; apt-get install slurmctld slurmd slurm-client munge, as scripts/install-system-deps.sh does)`;
  const id = await execa('id', ['-u', 'munge'], { reject: false });
  if (id.exitCode !== 0) return 'the munge user does not exist (install the munge package)';
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function daemon(cmd: string, args: string[], logFile: string, opts: { uid?: number; gid?: number; env?: Record<string, string> } = {}): ChildProcess {
  const fd = openSync(logFile, 'a');
  const bin = cmd.includes('/') ? cmd : cmd;
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd], uid: opts.uid, gid: opts.gid, env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, ...opts.env } });
  closeSync(fd);
  return child;
}

async function waitFor(what: string, test: () => Promise<boolean>, ms: number, logs: string[], children: ChildProcess[]): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await test()) return;
    // A daemon that exited will not come back: say so now, with its log.
    if (children.some((c) => c.exitCode !== null || c.signalCode !== null)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const tails = await Promise.all(logs.map(async (f) => `${f}:\n${(await fs.readFile(f, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')}`));
  throw new Error(`test Slurm: ${what} did not happen within ${ms} ms\n${tails.join('\n')}`);
}

function stopChild(c: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    const t = setTimeout(() => c.kill('SIGKILL'), ms);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    c.kill('SIGTERM');
  });
}

export async function startSlurm(opts: { gpus?: number; minJobAge?: number } = {}): Promise<SlurmCluster> {
  const t0 = performance.now();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mergelab-slurm-'));
  await fs.chmod(dir, 0o755);
  const munge = { uid: Number((await execa('id', ['-u', 'munge'])).stdout), gid: Number((await execa('id', ['-g', 'munge'])).stdout) };
  const keyDir = path.join(dir, 'munge-key');
  const runDir = path.join(dir, 'munge-run');
  for (const d of [keyDir, runDir, path.join(dir, 'state'), path.join(dir, 'spool'), path.join(dir, 'log')]) await fs.mkdir(d);
  await fs.chown(keyDir, munge.uid, munge.gid);
  await fs.chmod(keyDir, 0o700);
  await fs.chown(runDir, munge.uid, munge.gid);
  const key = path.join(keyDir, 'munge.key');
  await fs.writeFile(key, randomBytes(128), { mode: 0o400 });
  await fs.chown(key, munge.uid, munge.gid);
  const socket = path.join(runDir, 'munge.socket');
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  const gpus = opts.gpus ?? 0;
  const gpuFiles = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random'].slice(0, gpus);
  const conf = path.join(dir, 'slurm.conf');
  await fs.writeFile(
    conf,
    [
      'ClusterName=mergelabtest',
      'SlurmctldHost=localhost',
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'AuthType=auth/munge',
      `AuthInfo=socket=${socket}`,
      'CredType=cred/munge',
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool/%n`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd.log`,
      'MailProg=/bin/true',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'SchedulerParameters=batch_sched_delay=0,sched_min_interval=0',
      `MinJobAge=${opts.minJobAge ?? 3600}`,
      'ReturnToService=2',
      ...(gpus ? ['GresTypes=gpu'] : []),
      // Measured: slurmctld 22.05 refuses a second node listed after NodeName=localhost ("Duplicated NodeHostName"), not before it.
      'NodeName=far1 NodeAddr=192.0.2.1 CPUs=2 RealMemory=1000 State=FUTURE',
      `NodeName=localhost CPUs=2 RealMemory=1000${gpus ? ` Gres=gpu:${gpus}` : ''} State=UNKNOWN`,
      'PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:5',
      'PartitionName=far Nodes=far1 MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  if (gpus) await fs.writeFile(path.join(dir, 'gres.conf'), ['AutoDetect=off', ...gpuFiles.map((f) => `NodeName=localhost Name=gpu File=${f}`), ''].join('\n'));
  const env = { SLURM_CONF: conf };
  const logs = [path.join(runDir, 'munged.log'), path.join(dir, 'log', 'slurmctld.log'), path.join(dir, 'log', 'slurmd.log')];
  const children: ChildProcess[] = [];
  const stopAll = async (): Promise<void> => {
    for (const c of [...children].reverse()) await stopChild(c, 5000);
  };
  try {
    children.push(
      daemon('munged', ['-F', `--socket=${socket}`, `--key-file=${key}`, `--pid-file=${runDir}/munged.pid`, `--log-file=${runDir}/munged.log`, `--seed-file=${runDir}/munged.seed`], path.join(dir, 'log', 'munged.out'), munge),
    );
    await waitFor('munged socket', () => fs.access(socket).then(() => true, () => false), 10_000, logs, children);
    children.push(daemon('slurmctld', ['-D', '-f', conf], path.join(dir, 'log', 'slurmctld.out'), { env }));
    children.push(daemon('slurmd', ['-D', '-f', conf], path.join(dir, 'log', 'slurmd.out'), { env }));
    await waitFor(
      'the node to come up idle',
      async () => {
        const r = await execa('sinfo', ['-h', '-p', 'debug', '-o', '%T'], { env, reject: false, timeout: 3000 });
        return r.exitCode === 0 && r.stdout.trim() === 'idle';
      },
      30_000,
      logs,
      children,
    );
  } catch (e) {
    await stopAll();
    await fs.rm(dir, { recursive: true, force: true });
    throw e;
  }
  const startSeconds = (performance.now() - t0) / 1000;
  return {
    dir,
    env,
    startSeconds,
    async jobs() {
      const r = await execa('scontrol', ['-o', 'show', 'job'], { env, reject: false });
      const { parseScontrol } = await import('../../src/sweep/executors/slurm/parse.js');
      return r.exitCode === 0 ? parseScontrol(r.stdout) : [];
    },
    async stop() {
      await execa('scancel', ['--user', os.userInfo().username], { env, reject: false });
      const end = Date.now() + 15_000;
      while (Date.now() < end) {
        const q = await execa('squeue', ['-h'], { env, reject: false });
        if (q.exitCode !== 0 || q.stdout.trim() === '') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await stopAll();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
