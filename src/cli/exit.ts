import { CommanderError } from 'commander';
import { isUserError } from '../util/errors.js';
import { EXIT, type ExitCode } from '../util/exitCodes.js';

export { EXIT, type ExitCode } from '../util/exitCodes.js';

/** The exit code for an error that ended a command: whose fault it is decides. */
export function exitCodeFor(e: unknown): ExitCode {
  // Commander's own exits: --help and --version (0), a usage mistake (1).
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.input;
  return isUserError(e) ? EXIT.input : EXIT.internal;
}
