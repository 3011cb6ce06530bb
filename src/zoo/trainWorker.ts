/** Child process entry for one fine-tune phase (spawned by trainZoo so the two run on separate cores). */
import { trainPhase, ZOO_PLANS, type PhaseName, type ZooPlanName } from './train.js';

const argv = process.argv.slice(2);
const get = (k: string) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : undefined;
};
const phase = get('--phase') as PhaseName;
const out = get('--out');
if (!out || (phase !== 'math' && phase !== 'chat' && phase !== 'base')) {
  process.stderr.write('usage: trainWorker --phase math|chat --out DIR [--plan NAME] [--resume]\n');
  process.exit(2);
}
const planName = (get('--plan') ?? 'copy') as ZooPlanName;
if (!(planName in ZOO_PLANS)) {
  process.stderr.write(`trainWorker: unknown plan ${planName}; expected one of ${Object.keys(ZOO_PLANS).join(', ')}\n`);
  process.exit(2);
}
const plan = ZOO_PLANS[planName];
trainPhase(plan, phase, { out, resume: argv.includes('--resume'), log: (l) => process.stdout.write(l + '\n') }).catch((e: unknown) => {
  process.stderr.write(`[${phase}] failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
