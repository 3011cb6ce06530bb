/** `mergelab data build`: regenerate the committed task data and eval sets from their seeds. */
import path from 'node:path';
import type { Command } from 'commander';

export function register(program: Command): void {
  const data = program.command('data').description('task data and eval sets of the zoo');
  data
    .command('build')
    .description('regenerate data/math_train.jsonl, data/chat_train.jsonl and evals/{math,chat,lm}.jsonl from fixed seeds')
    .option('--root <dir>', 'repository root to write into (default: the working directory)')
    .action(async (o: { root?: string }) => {
      const { buildTaskData } = await import('../../zoo/taskData.js');
      await buildTaskData(path.resolve(o.root ?? process.cwd()), (l) => process.stdout.write(l + '\n'));
    });
}
