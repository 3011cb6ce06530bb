/**
 * Turns a finished base (OUT/base, trained by an earlier plan that is a prefix of FULL_PLAN's base
 * stages ending right before a restart stage) into the resumable checkpoint `zoo train --resume`
 * picks up: its weights, zero Adam moments (a restart stage resets them anyway) and the step count.
 * The result is bit-identical to an uninterrupted run of FULL_PLAN.
 * Usage: npx tsx bench/zoo-continue.ts OUT STEP
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CheckpointWriter } from '../src/checkpoint/writer.js';
import { readZooArrays } from '../src/zoo/io.js';
import { tensorShapes } from '../src/zoo/model.js';
import { FULL_PLAN, phaseHash } from '../src/zoo/train.js';

const [out, stepArg] = process.argv.slice(2);
const step = Number(stepArg);
let at = 0;
const restartAt = FULL_PLAN.base.stages.map((st) => ((at += st.steps), { start: at - st.steps, restart: !!st.restart })).find((x) => x.start === step);
if (!restartAt?.restart) throw new Error(`step ${step} is not the start of a restart stage of FULL_PLAN.base`);
const info = JSON.parse(await fs.readFile(path.join(out, 'base', 'training_info.json'), 'utf8'));
if (info.steps !== step) throw new Error(`${out}/base was trained for ${info.steps} steps, not ${step}`);
const { arrays } = await readZooArrays(path.join(out, 'base'));
const w = await CheckpointWriter.create(path.join(out, '.ckpt', 'base'), { dtype: 'F32' });
for (const [name, shape] of tensorShapes(FULL_PLAN.model)) {
  await w.addF32(name, shape, arrays.get(name)!);
  await w.addF32(`adam_m.${name}`, shape, new Float32Array(arrays.get(name)!.length));
  await w.addF32(`adam_v.${name}`, shape, new Float32Array(arrays.get(name)!.length));
}
await w.finish({ extraFiles: { 'state.json': JSON.stringify({ step, plan: phaseHash(FULL_PLAN, 'base'), lossEma: info.finalLossEma, elapsedSec: info.wallSec }) + '\n' } });
console.log(`wrote ${out}/.ckpt/base at step ${step}; run: mergelab zoo train --out ${out} --resume`);
