import { readFileSync, readdirSync } from 'node:fs';
import { EXIT } from './exit.js';

/**
 * Ctrl-C (SIGINT) and SIGTERM for the long commands. The first signal asks the command to stop
 * starting work and to finish or stop cleanly what runs (`soft`); the second stops running work
 * now (`hard`); if the command has still not ended a few seconds later, or at a third signal, the
 * process exits at once. Every way out restores the terminal (a progress bar hides the cursor and
 * turns line wrapping off) and exits with 130.
 */

/** Show the cursor, turn line wrapping back on (what cli-progress's stop() writes). */
export const TERMINAL_RESTORE = '\x1b[?25h\x1b[?7h';

export function restoreTerminal(): void {
  for (const s of [process.stderr, process.stdout]) if (s.isTTY) s.write(TERMINAL_RESTORE);
}

/** Every process below `pid` (children first), from /proc; empty where there is no /proc. */
export function descendants(pid: number = process.pid): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // Field 4 of /proc/PID/stat, after the parenthesised command name (which may hold spaces).
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Ask every child process to stop: a helper orphaned by our exit would go on working. */
export function stopChildren(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const pid of descendants()) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export interface Interrupts {
  /** Aborted by the first signal: start nothing new; let running work finish or stop it cleanly. */
  readonly soft: AbortSignal;
  /** Aborted by the second signal: stop running work now. */
  readonly hard: AbortSignal;
  /** Remove the handlers (the command ended). */
  dispose(): void;
}

export interface TrapOptions {
  /** Said at the first signal: what the command does now ("letting 2 running tasks finish"). */
  onSoft: () => string;
  /** Said at the second signal. */
  onHard?: () => string;
  /**
   * Said just before the process exits by force (a third signal, or the command still running
   * `graceMs` after the second): what is saved and how to resume.
   */
  onForcedExit: () => string;
  /** Synchronous last cleanup before a forced exit (temporary files of work cut off). */
  cleanup?: () => void;
  /** How long the command may take to wind down after the second signal (default 5 s). */
  graceMs?: number;
  /** If given, how long it may take after the first signal before the process exits by force. */
  softGraceMs?: number;
  write?: (line: string) => void;
}

/** Catch SIGINT and SIGTERM for the life of one command. */
export function trapInterrupts(opts: TrapOptions): Interrupts {
  const soft = new AbortController();
  const hard = new AbortController();
  const write = opts.write ?? ((l: string) => process.stderr.write(l + '\n'));
  let count = 0;
  const forcedExit = (): never => {
    restoreTerminal();
    stopChildren('SIGKILL');
    opts.cleanup?.();
    write(opts.onForcedExit());
    process.exit(EXIT.interrupted);
  };
  const handler = (sig: NodeJS.Signals): void => {
    count++;
    if (count === 1) {
      soft.abort(sig);
      write(`\n${sig === 'SIGINT' ? 'Ctrl-C' : sig}: ${opts.onSoft()} (Ctrl-C again to stop at once)`);
      if (opts.softGraceMs !== undefined) setTimeout(forcedExit, opts.softGraceMs).unref();
    } else if (count === 2) {
      hard.abort(sig);
      write(`${sig === 'SIGINT' ? 'Ctrl-C' : sig} again: ${opts.onHard?.() ?? 'stopping now'}`);
      setTimeout(forcedExit, opts.graceMs ?? 5000).unref();
    } else forcedExit();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    soft: soft.signal,
    hard: hard.signal,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
