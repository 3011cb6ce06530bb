/** Copies the weights of a resumable training checkpoint (data/zoo/.ckpt/PHASE) into a loadable HF folder, for probes. */
import { openCheckpoint } from '../src/checkpoint/reader.js';
import { saveZooModel } from '../src/zoo/io.js';
import { tensorShapes } from '../src/zoo/model.js';
import { COPY_PLAN } from '../src/zoo/train.js';

const [src, dst] = process.argv.slice(2);
const ck = await openCheckpoint(src);
const w = new Map<string, Float32Array>();
for (const [n] of tensorShapes(COPY_PLAN.model)) w.set(n, await ck.readF32(n));
await ck.close();
await saveZooModel(dst, COPY_PLAN.model, w);
console.log(`wrote ${dst}`);
