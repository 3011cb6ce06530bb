/**
 * A worker thread of the fast runner: builds its own FastModel from the weights it is sent and
 * runs the rows it is given. Messages in: {id, op: 'generate' | 'score', rows}; out: {id, tokens}
 * as work proceeds, then {id, result} or {id, error}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ZooTokenizer } from '../../zoo/tokenizer.js';
import type { ZooConfig } from '../../zoo/model.js';
import { FastModel, type RopeTables } from './model.js';
import { KernelArena } from './wasm.js';
import { generateRows, scoreRows, type GenRow, type ScoreRow } from './run.js';

export interface ThreadInit { config: ZooConfig; arrays: Array<[string, Float32Array]>; rope: RopeTables; words: string[]; module: WebAssembly.Module; earlyStop: boolean }
export type ThreadJob = { id: number; op: 'generate'; rows: GenRow[] } | { id: number; op: 'score'; rows: ScoreRow[] };

const init = workerData as ThreadInit;
const model = new FastModel(init.config, new Map(init.arrays), init.rope, new KernelArena(init.module));
const tok = new ZooTokenizer(init.words);
const port = parentPort!;

port.on('message', (job: ThreadJob) => {
  let pending = 0;
  let last = Date.now();
  const onTokens = (n: number) => {
    pending += n;
    if (Date.now() - last > 200) {
      port.postMessage({ id: job.id, tokens: pending });
      pending = 0;
      last = Date.now();
    }
  };
  try {
    const result = job.op === 'generate' ? generateRows(model, job.rows, (id) => tok.idToString(id), init.earlyStop, onTokens) : scoreRows(model, job.rows, onTokens);
    if (pending) port.postMessage({ id: job.id, tokens: pending });
    port.postMessage({ id: job.id, result });
  } catch (e) {
    port.postMessage({ id: job.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
port.postMessage({ ready: true });
