import path from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { UserError } from '../../util/errors.js';
import type { ZooPlanName } from '../../zoo/train.js';

// Every plan of ZOO_PLANS, spelled out so that listing the choices does not load the trainer
// (and tfjs); the Record type makes a missing or unknown name a compile error.
const PLAN_NAMES: Record<ZooPlanName, true> = { tiny: true, copy: true };

export function register(program: Command): void {
  const zoo = program.command('zoo').description('Train and inspect the built-in model zoo (base, math, chat)');
  zoo
    .command('train')
    .description('Pretrain the base (its micro-batches on both cores), then fine-tune math and chat from it (two processes in parallel)')
    .option('--tiny', 'build a miniature zoo in seconds (for tests)')
    .addOption(new Option('--plan <name>', 'training plan (tokenizer, sizes, steps; default copy, the committed zoo); --tiny is --plan tiny').choices(Object.keys(PLAN_NAMES)))
    .option('--out <dir>', 'output folder (default data/zoo for the copy plan, else .cache/zoo-PLAN, so neither a test nor a variant overwrites the committed zoo)')
    .option('--resume', 'continue from the last checkpoint in <out>/.ckpt and skip finished models')
    .option('--sequential', 'use one core: the base\'s micro-batches and then the two fine-tunes one after the other in this process (same weights, slower)')
    .action(async (o: { tiny?: boolean; plan?: ZooPlanName; out?: string; resume?: boolean; sequential?: boolean }) => {
      const { trainZoo, zooPlanName } = await import('../../zoo/train.js');
      if (o.tiny && o.plan && o.plan !== 'tiny') throw new UserError(`--tiny and --plan ${o.plan} contradict each other; pass one of them`, { field: '--plan' });
      const plan = zooPlanName(o);
      const out = o.out ?? (plan === 'copy' ? 'data/zoo' : `.cache/zoo-${plan}`);
      await trainZoo({ plan, out: path.resolve(out), resume: o.resume, parallel: !o.sequential, bar: process.stdout.isTTY });
    });
  zoo
    .command('stats')
    .description('Per-tensor-kind delta statistics of the fine-tunes against the base, and the cosine between task vectors')
    .option('--dir <dir>', 'zoo folder holding base/, math/ and chat/', 'data/zoo')
    .option('--json', 'print JSON')
    .action(async (o: { dir: string; json?: boolean }) => {
      const { zooDeltaStats, formatDeltaStats } = await import('../../zoo/deltaStats.js');
      const stats = await zooDeltaStats(path.resolve(o.dir));
      process.stdout.write(o.json ? JSON.stringify(stats, null, 2) + '\n' : formatDeltaStats(stats));
    });
}
