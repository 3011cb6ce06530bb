/**
 * The one exit-code convention of every mergelab process (README, "Exit codes"): scripts, CI and
 * Slurm tell a mistake in what they passed from a bug in mergelab and from a run stopped by
 * Ctrl-C. Here, below the CLI, so that entry points other than the CLI (a Slurm array element)
 * exit by it too.
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
