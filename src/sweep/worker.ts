import type { Kernels } from '../kernels/types.js';
import { isUserError } from '../util/errors.js';
import { runTask, type Task } from './tasks.js';
import { setEvalThreads } from './evaluator.js';
import type { Gpu } from '../eval/backends/config.js';

/**
 * A sweep worker: a child process (tfjs wasm runs one thread per process, so parallel merges and
 * evaluations need processes) that runs one task at a time for the parent over IPC.
 */

export type ToWorker =
  | { kind: 'task'; id: number; task: Task; gpus: Gpu[]; port?: number }
  /** The running task may use this many threads from now on (the parent lends idle slots). */
  | { kind: 'threads'; threads: number };
export type FromWorker =
  | { id: number; kind: 'done'; seconds: number; alreadyDone: boolean }
  | { id: number; kind: 'error'; message: string; userError: boolean }
  | { id: number; kind: 'progress'; fraction: number }
  | { id: number; kind: 'tokens'; n: number };

const backend = process.env.MERGELAB_BACKEND || 'auto';
let kernels: Promise<Kernels> | null = null;
const getKernels = (): Promise<Kernels> =>
  (kernels ??= import('../kernels/index.js').then((m) => m.getKernels(backend as Parameters<typeof m.getKernels>[0])));

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

// A parent killed with SIGKILL cannot stop us: leave when the IPC channel closes. Outputs are
// atomic, so work abandoned here leaves nothing half-written under a final name.
process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group: the parent decides whether our task finishes (first
// Ctrl-C) or is abandoned (second: it closes our channel), so the signal must not end us mid-task.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

/** Threads lent to this worker's running task (the parent lends idle slots, then takes them back). */
let lent = 1;

process.on('message', (msg: ToWorker) => {
  if (msg.kind === 'threads') {
    lent = msg.threads;
    void setEvalThreads(lent);
    return;
  }
  // A loan ends with the task it was made to.
  if (lent !== 1) void setEvalThreads((lent = 1));
  const { id, task, gpus, port } = msg;
  let lastSent = 0;
  let tokens = 0;
  let tokensSent = 0;
  const flushTokens = () => {
    if (tokens) send({ id, kind: 'tokens', n: tokens });
    tokens = 0;
    tokensSent = Date.now();
  };
  runTask(task, {
    kernels: getKernels,
    gpus,
    port,
    // The pool copies a worker's output into run.log.
    log: (line) => process.stdout.write(`${line}\n`),
    onProgress: (fraction) => {
      const now = Date.now();
      if (now - lastSent > 250) {
        lastSent = now;
        send({ id, kind: 'progress', fraction });
      }
    },
    onTokens: (n) => {
      tokens += n;
      if (Date.now() - tokensSent > 250) flushTokens();
    },
  }).then(
    (r) => (flushTokens(), send({ id, kind: 'done', seconds: r.seconds, alreadyDone: r.alreadyDone })),
    (e: unknown) => {
      const userError = isUserError(e);
      // The record keeps the message only (a stack names temporary paths and would differ between runs).
      const message = e instanceof Error ? e.message : String(e);
      process.stderr.write(`task ${task.type} ${task.key} failed: ${e instanceof Error && !userError ? (e.stack ?? message) : message}\n`);
      send({ id, kind: 'error', message, userError });
    },
  );
});

send({ id: -1, kind: 'progress', fraction: 0 });
