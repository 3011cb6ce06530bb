/**
 * Estimates how long `mergelab zoo train` takes to rebuild the whole zoo on this machine without
 * running it: times a short run of each base stage shape (with the plan's micro-batch helper
 * process, as the rebuild runs it) and of the two fine-tunes side by side (two processes, as the rebuild runs
 * them), then scales each by the committed zoo's plan (COPY_PLAN) and its step counts. Run it on a
 * quiet machine.
 *
 *   npx tsx bench/zoo-rebuild-estimate.ts [BASE_STEPS=40] [FT_STEPS=80]
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { trainPhase, COPY_PLAN as PLAN, type ZooPlan, type PhaseName } from '../src/zoo/train.js';

const quiet = () => undefined;

async function timeStage(out: string, stage: ZooPlan['base']['stages'][number], steps: number): Promise<number> {
  const plan: ZooPlan = { ...PLAN, probeEvery: 0, base: { ...PLAN.base, stages: [{ ...stage, restart: undefined, steps }] } };
  const res = await trainPhase(plan, 'base', { out, resume: false, log: quiet });
  return res.wallSec / steps;
}

async function child(out: string, phase: 'math' | 'chat', steps: number): Promise<void> {
  const p = PLAN[phase];
  const plan: ZooPlan = { ...PLAN, [phase]: { ...p, stages: [{ ...p.stages[0], steps }] } };
  const res = await trainPhase(plan, phase as PhaseName, { out, resume: false, log: quiet });
  process.send!({ phase, secPerStep: res.wallSec / steps });
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3], process.argv[4] as 'math' | 'chat', Number(process.argv[5]));
  const baseSteps = Number(process.argv[2] ?? 40);
  const ftSteps = Number(process.argv[3] ?? 80);
  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'zoo-estimate-'));
  try {
    let baseSec = 0;
    const lines: string[] = [];
    const seen = new Map<string, number>();
    for (const st of PLAN.base.stages) {
      const shape = `${st.batch}x${st.seqLen}`;
      if (!seen.has(shape)) seen.set(shape, await timeStage(out, st, baseSteps));
      const s = seen.get(shape)! * st.steps;
      baseSec += s;
      lines.push(`base stage ${shape} x ${st.steps} steps: ${seen.get(shape)!.toFixed(3)} s/step -> ${Math.round(s)} s`);
    }
    await fs.cp('data/zoo/base', path.join(out, 'base'), { recursive: true });
    const self = fileURLToPath(import.meta.url);
    const ft = await Promise.all(
      (['math', 'chat'] as const).map(
        (phase) =>
          new Promise<{ phase: string; secPerStep: number }>((resolve, reject) => {
            const c = fork(self, ['--child', out, phase, String(ftSteps)], { execArgv: ['--import', 'tsx'] });
            c.on('message', (m) => resolve(m as { phase: string; secPerStep: number }));
            c.on('exit', (code) => (code === 0 ? undefined : reject(new Error(`${phase} child exited ${code}`))));
          }),
      ),
    );
    let ftSec = 0;
    for (const f of ft) {
      const steps = PLAN[f.phase as 'math' | 'chat'].stages.reduce((a, s) => a + s.steps, 0);
      const s = f.secPerStep * steps;
      ftSec = Math.max(ftSec, s);
      lines.push(`${f.phase} fine-tune x ${steps} steps (beside the other): ${f.secPerStep.toFixed(3)} s/step -> ${Math.round(s)} s`);
    }
    lines.push(`estimated rebuild: base ${Math.round(baseSec)} s + fine-tunes ${Math.round(ftSec)} s = ${((baseSec + ftSec) / 60).toFixed(1)} minutes (${os.cpus().length} cores, measured ${new Date().toISOString()})`);
    console.log(lines.join('\n'));
  } finally {
    await fs.rm(out, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
