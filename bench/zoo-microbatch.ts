/**
 * Pretraining step time with the batch split in two row groups (PhasePlan.microBatches), the
 * second computed in a helper process on the other core, against the unsplit step and the split
 * step with no helper (the split's own cost). Ratios are measured in the same run.
 *
 *   npx tsx bench/zoo-microbatch.ts [STEPS=30]
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { COPY_PLAN, trainPhase, type ZooPlan } from '../src/zoo/train.js';

const steps = Number(process.argv[2] ?? 30);
const warm = Math.min(5, Math.floor(steps / 3));

async function secPerStep(out: string, batch: number, seqLen: number, microBatches: number | undefined, gradHelpers: boolean): Promise<number> {
  const plan: ZooPlan = { ...COPY_PLAN, probeEvery: 0, logEvery: 1, base: { ...COPY_PLAN.base, microBatches, stages: [{ steps, batch, seqLen }] } };
  let tWarm = 0;
  await trainPhase(plan, 'base', { out, resume: false, gradHelpers, log: (l) => void (l.includes(` step ${warm}/`) && (tWarm = performance.now())) });
  return (performance.now() - tWarm) / 1000 / (steps - warm);
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'zoo-microbatch-'));
try {
  const rows: string[] = [];
  for (const [B, T] of [[16, 128], [6, 320]] as const) {
    const plain = await secPerStep(path.join(dir, 'a'), B, T, undefined, false);
    const splitHere = await secPerStep(path.join(dir, 'b'), B, T, 2, false);
    const splitHelper = await secPerStep(path.join(dir, 'c'), B, T, 2, true);
    rows.push(`${B}x${T}: unsplit ${plain.toFixed(3)} s/step; 2 groups here ${splitHere.toFixed(3)} s (${(splitHere / plain).toFixed(2)}x); 2 groups, one in a helper ${splitHelper.toFixed(3)} s: speedup ${(plain / splitHelper).toFixed(2)}x`);
  }
  console.log(`${rows.join('\n')}\n(${steps} steps each, first ${warm} not timed; ${os.cpus().length} cores; ${new Date().toISOString()})`);
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}
