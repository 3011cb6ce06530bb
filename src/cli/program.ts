import { Command } from 'commander';
import { register as data } from './commands/data.js';
import { register as evalCmd } from './commands/eval.js';
import { register as merge } from './commands/merge.js';
import { register as report } from './commands/report.js';
import { register as run } from './commands/run.js';
import { register as serve } from './commands/serve.js';
import { register as status } from './commands/status.js';
import { register as task } from './commands/task.js';
import { register as validate } from './commands/validate.js';
import { register as zoo } from './commands/zoo.js';

/**
 * The whole command line, every command registered and nothing run. Command modules import only
 * commander at the top and load their machinery (tfjs, vega, the zoo, the sweep) inside their
 * action, so `--help` and a parse cost milliseconds.
 *
 * Commander's own exits become thrown CommanderErrors (`exitOverride`), so that main maps them to
 * the exit-code convention and a test can parse a command line without ending the process.
 */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('mergelab')
    .description('Sweep, merge, evaluate and report on model-merge recipes')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', '\nExit codes: 0 ok, 1 a problem with your input, 2 an internal error, 130 interrupted (Ctrl-C, SIGTERM).');
  // Each command module registers itself; keeping them separate keeps this file a table of contents.
  for (const register of [merge, validate, evalCmd, data, zoo, run, report, serve, status, task]) register(program);
  return program;
}
