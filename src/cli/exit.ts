import { CommanderError } from 'commander';
import { isUserError } from '../util/errors.js';

/**
 * The one exit-code convention of every mergelab command (README, "Exit codes"): scripts and CI
 * tell a mistake in what they passed from a bug in mergelab and from a run stopped by Ctrl-C.
 */
export const EXIT = {
  /** Done; for `run`, every point has its record. */
  ok: 0,
  /** A problem with the user's input: a flag, a recipe, an experiment, a model folder, a suite; or a sweep point that failed on one. */
  input: 1,
  /** A fault inside mergelab (a bug, a crashed worker); the message carries the stack. */
  internal: 2,
  /** Stopped by SIGINT or SIGTERM (128 + 2, as shells report Ctrl-C). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit code for an error that ended a command: whose fault it is decides. */
export function exitCodeFor(e: unknown): ExitCode {
  // Commander's own exits: --help and --version (0), a usage mistake (1).
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.input;
  return isUserError(e) ? EXIT.input : EXIT.internal;
}
