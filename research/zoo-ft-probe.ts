/**
 * Fine-tune probe: trains one fine-tune phase from OUT/base with overridden steps/lr and reports
 * the median ||delta||/||base|| over tensors. Usage: npx tsx bench/zoo-ft-probe.ts OUT math|chat STEPS LR
 */
import path from 'node:path';
import { trainPhase, FULL_PLAN, type PhaseName } from '../src/zoo/train.js';
import { readZooArrays } from '../src/zoo/io.js';

const [out, phase, steps, lr] = process.argv.slice(2);
const p = FULL_PLAN[phase as 'math' | 'chat'];
const plan = { ...FULL_PLAN, logEvery: 25, [phase]: { ...p, lr: Number(lr), stages: [{ ...p.stages[0], steps: Number(steps) }] } };
await trainPhase(plan, phase as PhaseName, { out, resume: false, log: (l) => console.log(l) });
const base = await readZooArrays(path.join(out, 'base'));
const ft = await readZooArrays(path.join(out, phase));
const ratios: Array<[string, number]> = [];
for (const [n, w] of base.arrays) {
  const f = ft.arrays.get(n)!;
  let d = 0;
  let b = 0;
  for (let i = 0; i < w.length; i++) {
    d += (f[i] - w[i]) ** 2;
    b += w[i] ** 2;
  }
  ratios.push([n, Math.sqrt(d / b)]);
}
ratios.sort((a, b) => a[1] - b[1]);
console.log(`median delta ratio ${(ratios[Math.floor(ratios.length / 2)][1] * 100).toFixed(2)}%; max ${ratios[ratios.length - 1][0]} ${(ratios[ratios.length - 1][1] * 100).toFixed(2)}%`);
