/** `mergelab zoo train` and `mergelab zoo stats`: the built-in model zoo. */
import path from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { UserError } from '../../util/errors.js';
import type { ZooPlanName } from '../../zoo/train.js';
import { removeTempsOf } from '../../util/atomic.js';
import { EXIT } from '../exit.js';
import { descendants, restoreTerminal, stopChildren } from '../interrupt.js';

// Every plan of ZOO_PLANS, spelled out so that listing the choices does not load the trainer
// (and tfjs); the Record type makes a missing or unknown name a compile error.
const PLAN_NAMES: Record<ZooPlanName, true> = { tiny: true, copy: true };

/**
 * Training saves a checkpoint every few steps and `--resume` continues from it, so an interrupt
 * loses at most the steps since the last one: stop the fine-tune processes, remove the checkpoint
 * they may have been writing (the previous one stays), and say how to resume.
 */
function trapTrainingInterrupts(out: string): () => void {
  let stopping = false;
  const handler = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const pids = new Set([process.pid, ...descendants()]);
    stopChildren('SIGTERM');
    for (let i = 0; i < 60 && descendants().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    stopChildren('SIGKILL');
    removeTempsOf(out, pids);
    restoreTerminal();
    const args = process.argv.slice(2).filter((a) => a !== '--resume');
    process.stderr.write(`\ninterrupted: finished models and the last checkpoint of each phase are kept in ${out}; run \`mergelab ${[...args, '--resume'].join(' ')}\` to continue\n`);
    process.exit(EXIT.interrupted);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

export function register(program: Command): void {
  const zoo = program.command('zoo').description('train and inspect the built-in model zoo (base, math, chat)');
  zoo
    .command('train')
    .description('pretrain the base (its micro-batches on both cores), then fine-tune math and chat from it (two processes in parallel)')
    .option('--tiny', 'build a miniature zoo in seconds (for tests)')
    .addOption(new Option('--plan <name>', 'training plan (tokenizer, sizes, steps; default copy, the committed zoo); --tiny is --plan tiny').choices(Object.keys(PLAN_NAMES)))
    .option('--out <dir>', 'output folder (default data/zoo for the copy plan, else .cache/zoo-PLAN, so neither a test nor a variant overwrites the committed zoo)')
    .option('--resume', 'continue from the last checkpoint in <out>/.ckpt and skip finished models')
    .option('--sequential', "use one core: the base's micro-batches and then the two fine-tunes one after the other in this process (same weights, slower)")
    .action(async (o: { tiny?: boolean; plan?: ZooPlanName; out?: string; resume?: boolean; sequential?: boolean }) => {
      if (o.tiny && o.plan && o.plan !== 'tiny') throw new UserError(`--tiny and --plan ${o.plan} contradict each other; pass one of them`, { field: '--plan' });
      const { trainZoo, zooPlanName } = await import('../../zoo/train.js');
      const plan = zooPlanName(o);
      const out = path.resolve(o.out ?? (plan === 'copy' ? 'data/zoo' : `.cache/zoo-${plan}`));
      const release = trapTrainingInterrupts(out);
      try {
        await trainZoo({ plan, out, resume: o.resume, parallel: !o.sequential, bar: process.stdout.isTTY });
      } finally {
        release();
      }
    });
  zoo
    .command('stats')
    .description('per-tensor-kind delta statistics of the fine-tunes against the base, and the cosine between task vectors')
    .option('--dir <dir>', 'zoo folder holding base/, math/ and chat/', 'data/zoo')
    .option('--json', 'print JSON')
    .action(async (o: { dir: string; json?: boolean }) => {
      const { zooDeltaStats, formatDeltaStats } = await import('../../zoo/deltaStats.js');
      const stats = await zooDeltaStats(path.resolve(o.dir));
      process.stdout.write(o.json ? JSON.stringify(stats, null, 2) + '\n' : formatDeltaStats(stats));
    });
}
