import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Writable } from 'node:stream';
import type { Task } from './tasks.js';
import type { FromWorker, ToWorker } from './worker.js';
import type { Gpu } from '../eval/backends/config.js';

/**
 * N worker child processes taking tasks one at a time. A worker that dies (out of memory, a
 * crash in native code) fails only its current task and is replaced for the next one.
 */

export class TaskError extends Error {
  constructor(
    message: string,
    readonly userError: boolean,
  ) {
    super(message);
  }
}

interface Slot {
  child: ChildProcess;
  busy: { id: number; task: Task; resolve: (r: { seconds: number; alreadyDone: boolean }) => void; reject: (e: Error) => void; onProgress?: (f: number) => void } | null;
  stderrTail: string;
}

function workerEntry(): { file: string; execArgv: string[] } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const js = path.join(here, 'worker.js');
  const ts = path.join(here, 'worker.ts');
  if (import.meta.url.endsWith('.js')) return { file: js, execArgv: [] };
  // Running from TypeScript sources: load tsx's ESM hooks in the child by absolute path, so the
  // child works whatever its working directory is.
  const tsxPkg = createRequire(import.meta.url).resolve('tsx/package.json');
  return { file: ts, execArgv: ['--import', pathToFileURL(path.join(path.dirname(tsxPkg), 'dist', 'loader.mjs')).href] };
}

export class WorkerPool {
  private slots: Slot[] = [];
  private queue: Array<{ task: Task; gpus: Gpu[]; port?: number; resolve: Slot['busy'] extends infer B ? (B extends { resolve: infer R } ? R : never) : never; reject: (e: Error) => void; onProgress?: (f: number) => void }> = [];
  private nextId = 1;
  private closed = false;
  /** Worker processes started (replacements included). */
  started = 0;

  constructor(
    readonly size: number,
    private readonly opts: { backend: string; log?: Writable; onTokens?: (n: number) => void },
  ) {}

  private spawn(): Slot {
    const { file, execArgv } = workerEntry();
    const child = fork(file, [], {
      execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, MERGELAB_BACKEND: this.opts.backend },
    });
    this.started++;
    const slot: Slot = { child, busy: null, stderrTail: '' };
    const log = this.opts.log;
    child.stdout?.on('data', (d: Buffer) => log?.write(`[worker ${child.pid}] ${d.toString()}`));
    child.stderr?.on('data', (d: Buffer) => {
      log?.write(`[worker ${child.pid}] ${d.toString()}`);
      slot.stderrTail = (slot.stderrTail + d.toString()).slice(-2000);
    });
    child.on('message', (m: FromWorker) => {
      const b = slot.busy;
      if (!b || m.id !== b.id) return;
      if (m.kind === 'tokens') this.opts.onTokens?.(m.n);
      else if (m.kind === 'progress') b.onProgress?.(m.fraction);
      else {
        slot.busy = null;
        if (m.kind === 'done') b.resolve({ seconds: m.seconds, alreadyDone: m.alreadyDone });
        else b.reject(new TaskError(m.message, m.userError));
        this.pump();
      }
    });
    // A send to a worker that just died surfaces here; its 'exit' handler fails the task.
    child.on('error', (e) => log?.write(`[worker ${child.pid}] ${e.message}\n`));
    child.on('exit', (code, signal) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      const b = slot.busy;
      slot.busy = null;
      if (b) {
        const tail = slot.stderrTail.trim().split('\n').slice(-3).join(' | ');
        b.reject(new TaskError(`worker process exited (${signal ?? `code ${code}`})${tail ? `: ${tail}` : ''}`, false));
      }
      if (!this.closed) this.pump();
    });
    this.slots.push(slot);
    return slot;
  }

  /** Run a task on a free worker; `gpus` are the GPUs it is given, `port` the port of a server it starts. */
  run(task: Task, opts: { gpus?: Gpu[]; port?: number; onProgress?: (f: number) => void } = {}): Promise<{ seconds: number; alreadyDone: boolean }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, gpus: opts.gpus ?? [], port: opts.port, resolve, reject, onProgress: opts.onProgress });
      this.pump();
    });
  }

  /** Tells the worker running `task` how many threads it may use now (a task not running is left alone). */
  setThreads(task: Task, threads: number): void {
    const slot = this.slots.find((s) => s.busy?.task === task);
    if (slot?.child.connected) slot.child.send({ kind: 'threads', threads } satisfies ToWorker);
  }

  get busyCount(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  private pump(): void {
    if (this.closed) return;
    while (this.queue.length) {
      let slot = this.slots.find((s) => !s.busy && s.child.connected);
      if (!slot) {
        if (this.slots.length >= this.size) return;
        slot = this.spawn();
      }
      const job = this.queue.shift()!;
      const id = this.nextId++;
      slot.busy = { id, task: job.task, resolve: job.resolve, reject: job.reject, onProgress: job.onProgress };
      const msg: ToWorker = { kind: 'task', id, task: job.task, gpus: job.gpus, ...(job.port !== undefined ? { port: job.port } : {}) };
      slot.child.send(msg);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const exits = this.slots.map((s) => new Promise<void>((r) => (s.child.exitCode !== null || s.child.signalCode !== null ? r() : s.child.once('exit', () => r()))));
    for (const s of this.slots) s.child.disconnect();
    await Promise.all(exits);
  }
}
