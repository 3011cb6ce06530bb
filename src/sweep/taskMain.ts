import { formatProblems, isUserError } from '../util/errors.js';
import { EXIT } from '../util/exitCodes.js';
import { runTaskCommand } from './taskCommand.js';

/**
 * What a Slurm job array element runs: `mergelab task EXPDIR --id ID` without loading the rest
 * of the CLI (its command modules cost about a second of CPU per task, measured on this machine,
 * paid by every element of every array). Exit codes and messages are the CLI's, so a job's state
 * tells a mistake in the task list from a fault in mergelab.
 */
const [expDir, flag, id] = process.argv.slice(2);
if (!expDir || flag !== '--id' || !id) {
  process.stderr.write('usage: taskMain EXPDIR --id ID (the same as `mergelab task EXPDIR --id ID`)\n');
  process.exit(EXIT.input);
}
runTaskCommand(expDir, id, (l) => process.stdout.write(l + '\n')).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (isUserError(e)) {
      process.stderr.write(`mergelab: ${formatProblems(e.problems, e.problems.length > 1 ? e.file : undefined)}\n`);
      process.exitCode = EXIT.input;
    } else {
      process.stderr.write(`mergelab: internal error (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = EXIT.internal;
    }
  },
);
