/**
 * `mergelab serve` as a function: opens the evaluator's built-in backend on a model folder and
 * answers OpenAI-compatible requests over it until closed.
 */
import path from 'node:path';
import { openBackend } from '../eval/evaluate.js';
import { hasTokenLevel } from '../eval/backends/types.js';
import { UserError } from '../util/errors.js';
import { loadChatRenderer } from './chat.js';
import { ServeEngine } from './engine.js';
import { createApp, listen, type Listening } from './server.js';

export interface ServeOptions {
  port: number;
  host: string;
  /** Name clients pass as `model` (default: the folder as given, as vLLM does). */
  servedModelName?: string;
  chatTemplate?: string;
  seed?: number;
  batchSize?: number;
  log?: (line: string) => void;
}

export interface RunningServer extends Listening {
  engine: ServeEngine;
  modelId: string;
  /** Closes the listener (in-flight requests get `graceMs`) and frees the model. */
  stop(graceMs?: number): Promise<void>;
}

export async function startServer(modelDir: string, opts: ServeOptions): Promise<RunningServer> {
  const chat = await loadChatRenderer(modelDir, opts.chatTemplate);
  // Greedy completions go through the fast runner; sampling and logprobs need token-level access,
  // which the tfjs reference gives. Their greedy outputs and scores are the same bit for bit.
  const backend = await openBackend(modelDir, {});
  const reference = hasTokenLevel(backend) ? backend : await openBackend(modelDir, { runner: 'tfjs' });
  const disposeAll = async (): Promise<void> => {
    await backend.dispose();
    if (reference !== backend) await reference.dispose();
  };
  if (!hasTokenLevel(reference)) {
    await disposeAll();
    throw new UserError(`mergelab serve: the evaluation backend ${reference.name} gives no token-level access (needed for sampling and logprobs)`);
  }
  const id = opts.servedModelName ?? modelDir;
  const engine = new ServeEngine(
    { id, aliases: [modelDir, path.resolve(modelDir)].filter((a) => a !== id), created: Math.floor(Date.now() / 1000), backend, tokens: reference.tokens, chat },
    { seed: opts.seed ?? 0, batchSize: opts.batchSize ?? 32 },
  );
  let listening: Listening;
  try {
    listening = await listen(createApp(engine, opts.log), opts.port, opts.host);
  } catch (e) {
    await disposeAll();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new UserError(`mergelab serve: cannot listen on ${opts.host}:${opts.port} (${code}); pick another --port or --host`, { field: 'port' });
    throw e;
  }
  return {
    ...listening,
    engine,
    modelId: id,
    stop: async (graceMs) => {
      await listening.close(graceMs);
      await disposeAll();
    },
  };
}
