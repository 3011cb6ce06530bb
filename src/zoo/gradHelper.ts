/**
 * A child process that computes micro-batch gradients (gradWorker.ts), so that a step's row groups
 * run on two cores: wasm threads do not start under Node, so a second core needs a second process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ZooConfig } from './model.js';
import type { MicroBatch, MicroGrads } from './microGrads.js';

export type HelperRequest =
  | { kind: 'init'; cfg: ZooConfig; names: string[]; shapes: number[][] }
  | { kind: 'step'; weights: Float32Array[]; mb: MicroBatch };

export type HelperReply = { kind: 'ready'; backend: string } | ({ kind: 'grads' } & MicroGrads) | { kind: 'error'; message: string };

const WORKER = fileURLToPath(new URL('./gradWorker.ts', import.meta.url));

export class GradHelper {
  private pending: { resolve: (r: HelperReply) => void; reject: (e: Error) => void } | null = null;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (r: HelperReply) => {
      const p = this.pending;
      this.pending = null;
      if (!p) return;
      if (r.kind === 'error') p.reject(new Error(`gradient helper failed: ${r.message}`));
      else p.resolve(r);
    });
    child.on('exit', (code) => {
      this.pending?.reject(new Error(`gradient helper exited with code ${code}`));
      this.pending = null;
    });
  }

  /** Starts a helper on the trainer's backend (a helper on another backend would give other gradients). */
  static async start(cfg: ZooConfig, names: string[], shapes: number[][], backend: string): Promise<GradHelper> {
    // Typed arrays cross by structured clone, not as JSON.
    const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const h = new GradHelper(child);
    const r = await h.request({ kind: 'init', cfg, names, shapes });
    if (r.kind !== 'ready' || r.backend !== backend) {
      h.close();
      throw new Error(`gradient helper runs on ${r.kind === 'ready' ? r.backend : '?'}, the trainer on ${backend}`);
    }
    return h;
  }

  /** Sends a request; `sent` settles once it is written out, `reply` with the answer. */
  private post(req: HelperRequest): { sent: Promise<void>; reply: Promise<HelperReply> } {
    if (this.pending) throw new Error('gradient helper is busy');
    const reply = new Promise<HelperReply>((resolve, reject) => (this.pending = { resolve, reject }));
    const sent = new Promise<void>((resolve, reject) => this.child.send(req, (e) => (e ? reject(e) : resolve())));
    return { sent, reply };
  }

  private request(req: HelperRequest): Promise<HelperReply> {
    return this.post(req).reply;
  }

  /**
   * Starts one group's gradient. Resolves once the request has left this process: a multi-megabyte
   * message is written only while the event loop runs, so computing here before that would leave
   * the helper waiting for its input.
   */
  async startGrads(weights: Float32Array[], mb: MicroBatch): Promise<{ result: Promise<MicroGrads> }> {
    const { sent, reply } = this.post({ kind: 'step', weights, mb });
    await sent;
    const result = reply.then((r) => {
      if (r.kind !== 'grads') throw new Error(`gradient helper answered ${r.kind}`);
      return { loss: r.loss, tokens: r.tokens, grads: r.grads };
    });
    return { result };
  }

  close(): void {
    if (this.child.connected) this.child.disconnect();
    this.child.kill();
  }
}
