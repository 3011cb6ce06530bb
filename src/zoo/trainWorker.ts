/** Child process entry for one fine-tune phase (spawned by trainZoo so the two run on separate cores). */
import { trainPhase, FULL_PLAN, TINY_PLAN, type PhaseName } from './train.js';

const argv = process.argv.slice(2);
const get = (k: string) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : undefined;
};
const phase = get('--phase') as PhaseName;
const out = get('--out');
if (!out || (phase !== 'math' && phase !== 'chat' && phase !== 'base')) {
  process.stderr.write('usage: trainWorker --phase math|chat --out DIR [--tiny] [--resume]\n');
  process.exit(2);
}
const plan = argv.includes('--tiny') ? TINY_PLAN : FULL_PLAN;
trainPhase(plan, phase, { out, resume: argv.includes('--resume'), log: (l) => process.stdout.write(l + '\n') }).catch((e: unknown) => {
  process.stderr.write(`[${phase}] failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
