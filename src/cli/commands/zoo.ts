import path from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';

export function register(program: Command): void {
  const zoo = program.command('zoo').description('Train and inspect the built-in model zoo (base, math, chat)');
  zoo
    .command('train')
    .description('Pretrain the base, then fine-tune math and chat from it (two processes in parallel)')
    .option('--tiny', 'build a miniature zoo in seconds (for tests)')
    .addOption(new Option('--plan <name>', 'training plan (tokenizer, sizes, steps); --tiny is --plan tiny').choices(['full', 'tiny', 'words']))
    .option('--out <dir>', 'output folder (default data/zoo; with --tiny .cache/zoo-tiny, so a test never overwrites the committed zoo)')
    .option('--resume', 'continue from the last checkpoint in <out>/.ckpt and skip finished models')
    .option('--sequential', 'run the two fine-tunes one after the other in this process')
    .action(async (o: { tiny?: boolean; plan?: 'full' | 'tiny' | 'words'; out?: string; resume?: boolean; sequential?: boolean }) => {
      const { trainZoo } = await import('../../zoo/train.js');
      const out = o.out ?? (o.tiny || o.plan === 'tiny' ? '.cache/zoo-tiny' : 'data/zoo');
      await trainZoo({ tiny: o.tiny, plan: o.plan, out: path.resolve(out), resume: o.resume, parallel: !o.sequential, bar: process.stdout.isTTY });
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
