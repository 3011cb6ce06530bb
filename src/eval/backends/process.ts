/**
 * Server processes started per evaluated model: each in its own process group (detached), its
 * output appended to a log file the caller names, a pid file while it runs, and stopped as a
 * group: SIGTERM, then SIGKILL after a grace period. A pid file outlives a mergelab killed with
 * SIGKILL, so the next run's `reapServers` can stop what it left behind.
 */
import { promises as fs, accessSync, closeSync, constants, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { writeFileAtomic } from '../../util/atomic.js';

/** An evaluation that could not be completed; the message is one line, fit for a failed record. */
export class EvalBackendError extends Error {
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, ' | '));
    this.name = 'EvalBackendError';
  }
}

export interface PidRecord {
  pid: number;
  /** The machine it runs on: a pid folder on shared storage holds servers of several nodes. */
  host?: string;
  /** Field 22 of /proc/PID/stat: tells our process from a later one that got the same pid. */
  startTicks: string | null;
  owner: number;
  ownerStartTicks: string | null;
  command: string;
  port: number;
  gpus: string;
  logFile: string;
  startedAt: string;
}

async function startTicks(pid: number): Promise<string | null> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; fields after it are plain.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether any process of the group is still running (zombies waiting to be reaped do not count). */
function groupAlive(pgid: number): boolean {
  let entries: string[] | null = null;
  try {
    entries = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    entries = null;
  }
  if (entries) {
    for (const e of entries) {
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(f[2]) === pgid && f[0] !== 'Z') return true;
      } catch {
        // exited while we looked
      }
    }
    return false;
  }
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM to the group, SIGKILL after `graceMs`; resolves when no process of the group is left. */
export async function stopGroup(pgid: number, graceMs: number): Promise<'exited' | 'killed' | 'gone'> {
  if (!groupAlive(pgid)) return 'gone';
  signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pgid)) return 'exited';
    await sleep(50);
  }
  signalGroup(pgid, 'SIGKILL');
  for (let i = 0; i < 100 && groupAlive(pgid); i++) await sleep(20);
  return 'killed';
}

/** Groups started by this process: killed outright if mergelab exits without stopping them. */
const live = new Set<number>();
let exitHook = false;
function track(pgid: number): void {
  live.add(pgid);
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const g of live) signalGroup(g, 'SIGKILL');
  });
}

export interface StartOptions {
  /** Command template: {model}, {port}, {gpu}, {host} are filled in. */
  command: string;
  modelDir: string;
  port: number;
  host: string;
  gpus: readonly (number | string)[];
  logFile: string;
  /** Folder of pid files (one per running server); none written when absent. */
  pidDir?: string;
  env?: Record<string, string>;
  stopGraceMs: number;
}

export interface ServerProcess {
  pid: number;
  /** The command line as run (placeholders filled). */
  line: string;
  /** CUDA_VISIBLE_DEVICES given to it. */
  gpus: string;
  /** Set once the leader has exited: how. */
  exit(): { code: number | null; signal: string | null } | null;
  /** Resolves when the leader exits. */
  exited: Promise<void>;
  stop(): Promise<void>;
}

/** POSIX shell quoting of one word. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line with placeholders filled, shell-quoted: templates run through /bin/sh, so they
 * are written as in a terminal (quotes, VAR=value prefixes), and a path with spaces stays one word.
 */
export function fillTemplate(command: string, values: Record<string, string>): string {
  return command.replace(/\{([a-z_]+)\}/g, (m, k: string) => (values[k] === undefined ? m : shellQuote(values[k])));
}

/** Starts `command` in its own process group with its output appended to `logFile`. */
export async function startProcess(o: StartOptions): Promise<ServerProcess> {
  const gpus = o.gpus.join(',');
  const line = fillTemplate(o.command, { model: o.modelDir, port: String(o.port), gpu: gpus, host: o.host });
  await fs.mkdir(path.dirname(path.resolve(o.logFile)), { recursive: true });
  // The log file itself (not a pipe through us) is the server's stdout and stderr, so its output
  // still lands there if mergelab dies.
  // (execa's types spell out only small literal descriptors; any open one works at run time.)
  const fd = openSync(path.resolve(o.logFile), 'a') as 3;
  const sub = execa('/bin/sh', ['-c', line], {
    detached: true,
    cleanup: false,
    reject: false,
    stdin: 'ignore',
    stdout: fd,
    stderr: fd,
    env: { ...o.env, ...(o.gpus.length ? { CUDA_VISIBLE_DEVICES: gpus } : {}) },
  });
  closeSync(fd);
  let exitInfo: { code: number | null; signal: string | null } | null = null;
  const exited = sub.then((r) => {
    exitInfo = { code: r.exitCode ?? null, signal: r.signal ?? null };
  });
  const pid = sub.pid;
  if (pid === undefined) {
    await exited;
    throw new EvalBackendError(`serve command "${line}": /bin/sh could not be started`);
  }
  track(pid);
  const pidFile = o.pidDir ? path.join(o.pidDir, `server-${pid}.json`) : null;
  if (pidFile) {
    const rec: PidRecord = { pid, host: os.hostname(), startTicks: await startTicks(pid), owner: process.pid, ownerStartTicks: await startTicks(process.pid), command: line, port: o.port, gpus, logFile: path.resolve(o.logFile), startedAt: new Date().toISOString() };
    await writeFileAtomic(pidFile, JSON.stringify(rec, null, 2) + '\n');
  }
  let stopping: Promise<void> | null = null;
  return {
    pid,
    line,
    gpus,
    exit: () => exitInfo,
    exited,
    stop: () =>
      (stopping ??= (async () => {
        await stopGroup(pid, o.stopGraceMs);
        await exited;
        live.delete(pid);
        if (pidFile) await fs.rm(pidFile, { force: true });
      })()),
  };
}

/**
 * Stops servers recorded in `pidDir` whose mergelab is gone (killed before it could stop them),
 * and removes their pid files. A pid now used by another program (start time differs) is left
 * alone. Returns the pids that were stopped.
 */
export async function reapServers(pidDir: string, opts: { graceMs?: number } = {}): Promise<number[]> {
  let names: string[];
  try {
    names = (await fs.readdir(pidDir)).filter((n) => /^server-\d+\.json$/.test(n));
  } catch {
    return [];
  }
  const stopped: number[] = [];
  for (const n of names) {
    const file = path.join(pidDir, n);
    let rec: PidRecord;
    try {
      rec = JSON.parse(await fs.readFile(file, 'utf8')) as PidRecord;
    } catch {
      await fs.rm(file, { force: true });
      continue;
    }
    // Another node's server is its node's business (Slurm ends it with its job); its pid means nothing here.
    if (rec.host !== undefined && rec.host !== os.hostname()) continue;
    const ownerAlive = rec.owner !== process.pid && rec.ownerStartTicks !== null && (await startTicks(rec.owner)) === rec.ownerStartTicks;
    if (ownerAlive) continue;
    const same = rec.startTicks === null || (await startTicks(rec.pid)) === rec.startTicks;
    if (same && groupAlive(rec.pid)) {
      await stopGroup(rec.pid, opts.graceMs ?? 10_000);
      stopped.push(rec.pid);
    }
    await fs.rm(file, { force: true });
  }
  return stopped;
}

/** A port nothing listens on at `host` now (the OS picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The last `n` lines of a log, for failure messages. */
export async function logTail(file: string, n = 3): Promise<string> {
  try {
    const text = await fs.readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-n).join(' | ').slice(-400);
  } catch {
    return '';
  }
}

/** Words a command may start with that run the next word. */
const RUNS_NEXT = new Set(['exec', 'env', 'nohup', 'time', 'command', 'nice']);

/**
 * The program a command template starts, when it can be read off the template: its first word
 * after `VAR=value` assignments and wrappers such as `env` or `exec`; null when the shell would
 * have to expand something to know it (quotes, `$`, a builtin such as `cd`) or a wrapper takes
 * options (`env -u X ...`).
 */
export function programOf(template: string): string | null {
  for (const w of template.trim().split(/\s+/)) {
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w) || RUNS_NEXT.has(w)) continue;
    if (!/^[A-Za-z0-9_./+][A-Za-z0-9_./+-]*$/.test(w)) return null;
    return ['cd', 'source', '.', 'eval', 'set', 'export'].includes(w) ? null : w;
  }
  return null;
}

/** Whether `program` can be run: a path that is an executable file, or a name found on `PATH`. */
export function canRun(program: string, envPath: string | undefined): boolean {
  const ok = (f: string): boolean => {
    try {
      accessSync(f, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (program.includes('/')) return ok(path.resolve(program));
  return (envPath ?? '').split(':').some((d) => d !== '' && ok(path.join(d, program)));
}
