import { isUserError } from '../util/errors.js';
import { runTaskCommand } from './taskCommand.js';

/**
 * What a Slurm job array element runs: `mergelab task EXPDIR --id ID` without loading the rest
 * of the CLI (its command modules cost about a second of CPU per task, measured on this machine,
 * paid by every element of every array).
 */
const [expDir, flag, id] = process.argv.slice(2);
if (!expDir || flag !== '--id' || !id) {
  process.stderr.write('usage: taskMain EXPDIR --id ID (the same as `mergelab task EXPDIR --id ID`)\n');
  process.exit(2);
}
runTaskCommand(expDir, id, (l) => process.stdout.write(l + '\n')).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (!isUserError(e)) throw e;
    process.stderr.write(`mergelab: ${e.message}\n`);
    process.exitCode = 2;
  },
);
