#!/usr/bin/env node
import { Command } from 'commander';
import { isUserError } from '../util/errors.js';

const program = new Command();
program.name('mergelab').description('Sweep, merge, evaluate and report on model-merge recipes').version('0.1.0');

// Each command module registers itself; keeping them separate keeps this file a table of contents.
const commandModules: Array<() => Promise<{ register(p: Command): void }>> = [
  () => import('./commands/merge.js'),
  () => import('./commands/validate.js'),
  () => import('./commands/eval.js'),
  () => import('./commands/data.js'),
  () => import('./commands/zoo.js'),
  () => import('./commands/run.js'),
  () => import('./commands/report.js'),
  () => import('./commands/serve.js'),
  () => import('./commands/status.js'),
  () => import('./commands/task.js'),
];

async function main(): Promise<void> {
  for (const load of commandModules) (await load()).register(program);
  await program.parseAsync(process.argv);
}

main().catch((e: unknown) => {
  if (isUserError(e)) {
    process.stderr.write(`mergelab: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
});
