/**
 * A mistake in what the user gave us (a recipe, a checkpoint, a flag).
 * The CLI prints `message` alone, without a stack trace; the message must name
 * the file, the field and what was expected.
 */
export class UserError extends Error {
  readonly file?: string;
  readonly field?: string;
  constructor(message: string, opts: { file?: string; field?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'UserError';
    this.file = opts.file;
    this.field = opts.field;
  }
}

/** Several user mistakes found in one pass (validate reports all of them, not only the first). */
export class UserErrors extends UserError {
  readonly problems: string[];
  constructor(problems: string[], opts: { file?: string } = {}) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'}${opts.file ? ` in ${opts.file}` : ''}:\n` + problems.map((p) => `  - ${p}`).join('\n'), opts);
    this.name = 'UserErrors';
    this.problems = problems;
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
