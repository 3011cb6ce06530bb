/** `mergelab data build`: regenerate the committed task data and eval sets from their seeds. */
import path from 'node:path';
import type { Command } from 'commander';
import { buildTaskData } from '../../zoo/taskData.js';

export function register(program: Command): void {
  const data = program.command('data').description('task data and eval sets of the zoo');
  data
    .command('build')
    .description('regenerate data/math_train.jsonl, data/chat_train.jsonl and evals/{math,chat,lm}.jsonl from fixed seeds')
    .option('--root <dir>', 'repository root to write into', process.cwd())
    .action(async (o: { root: string }) => {
      await buildTaskData(path.resolve(o.root), (l) => process.stdout.write(l + '\n'));
    });
}
