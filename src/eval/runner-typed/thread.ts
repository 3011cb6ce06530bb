/**
 * A worker thread of the fast runner's pool (pool.ts): keeps the models it is sent (each with its
 * own kernel instance) and works on the jobs it is given, claiming rows from the job's shared
 * counter while its flag allows, then reports the rows it ran.
 */
import { parentPort } from 'node:worker_threads';
import { ZooTokenizer } from '../../zoo/tokenizer.js';
import { FastModel } from './model.js';
import { KernelArena, kernelModule } from './wasm.js';
import { generateRows, scoreRows, type Claim, type GenOut } from './run.js';
import type { FromThread, ToThread } from './pool.js';

const port = parentPort!;
const models = new Map<number, { model: FastModel; tok: ZooTokenizer }>();
const send = (m: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

port.on('message', (m: ToThread) => {
  if (m.type === 'model') {
    const init = m.model;
    models.set(m.id, { model: new FastModel(init.config, new Map(init.arrays), init.rope, new KernelArena(kernelModule())), tok: new ZooTokenizer(init.words) });
    return;
  }
  if (m.type === 'drop') {
    models.delete(m.id);
    return;
  }
  const { ctl, order, slot } = m;
  const claim: Claim = () => {
    if (Atomics.load(ctl, 1 + slot) === 0) return undefined;
    const k = Atomics.add(ctl, 0, 1);
    return k < order.length ? order[k] : undefined;
  };
  let pending = 0;
  let last = Date.now();
  const onTokens = (n: number) => {
    pending += n;
    if (Date.now() - last > 200) {
      send({ type: 'tokens', job: m.job, n: pending });
      pending = 0;
      last = Date.now();
    }
  };
  try {
    const entry = models.get(m.model);
    if (!entry) throw new Error(`model ${m.model} was not sent to this thread`);
    const results: Array<[number, GenOut | Float32Array]> = [];
    if (m.op === 'generate') generateRows(entry.model, m.rows, claim, (id) => entry.tok.idToString(id), m.earlyStop, (i, out) => results.push([i, out]), onTokens);
    else scoreRows(entry.model, m.rows, claim, (i, lg) => results.push([i, lg]), onTokens);
    if (pending) send({ type: 'tokens', job: m.job, n: pending });
    send({ type: 'done', job: m.job, results }, m.op === 'score' ? results.map(([, r]) => (r as Float32Array).buffer as ArrayBuffer) : []);
  } catch (e) {
    send({ type: 'error', job: m.job, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
send({ type: 'ready' });
