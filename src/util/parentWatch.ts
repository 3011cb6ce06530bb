import { readFileSync } from 'node:fs';

/**
 * Notice when the process that started this one dies, so a run does not go on detached, holding
 * its lock, after its launcher (`bin/mergelab.js`, `npm run`, `npx`, a terminal) was killed.
 *
 * Watched: the parent, and every further ancestor in this process's group, which is the job a
 * shell started (npx, sh, the launcher, tsx), each identified by pid and start time so a reused
 * pid is not mistaken for it. Under `nohup` (SIGHUP ignored from the start) the user asked to
 * outlive the terminal, so only ancestors within the job count. Without /proc (not Linux), a
 * change of the parent's pid is the sign.
 */

interface ProcInfo {
  state: string;
  ppid: number;
  pgrp: number;
  start: string;
}

function procInfo(pid: number | 'self'): ProcInfo | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]), pgrp: Number(f[2]), start: f[19] };
  } catch {
    return null;
  }
}

function sighupIgnored(): boolean {
  try {
    const m = /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && (BigInt(`0x${m[1]}`) & 1n) === 1n;
  } catch {
    return false;
  }
}

export interface Watched {
  pid: number;
  start: string;
}

/** The processes whose death should stop this one (see the module comment); null without /proc. */
export function launcherChain(): Watched[] | null {
  const self = procInfo('self');
  if (!self) return null;
  const nohup = sighupIgnored();
  const out: Watched[] = [];
  let pid = self.ppid;
  for (let depth = 0; pid > 1 && depth < 64; depth++) {
    const p = procInfo(pid);
    if (!p) break;
    const inJob = p.pgrp === self.pgrp;
    if (!inJob && (depth > 0 || nohup)) break;
    out.push({ pid, start: p.start });
    if (!inJob) break;
    pid = p.ppid;
  }
  return out;
}

function gone(w: Watched): boolean {
  const p = procInfo(w.pid);
  // A killed process stays a zombie until its own parent reaps it: it is gone all the same.
  return p === null || p.start !== w.start || p.state === 'Z' || p.state === 'X';
}

/**
 * Call `onGone` (once) when a watched process dies; returns a function that stops watching. The
 * timer does not keep the process alive.
 */
export function watchLauncher(onGone: (why: string) => void, opts: { intervalMs?: number } = {}): () => void {
  const chain = launcherChain();
  const firstParent = process.ppid;
  const timer = setInterval(() => {
    const dead = chain ? chain.find(gone) : process.ppid !== firstParent ? { pid: firstParent } : undefined;
    if (!dead) return;
    clearInterval(timer);
    onGone(`process ${dead.pid}, which started this run, has ended`);
  }, opts.intervalMs ?? 500);
  timer.unref();
  return () => clearInterval(timer);
}
