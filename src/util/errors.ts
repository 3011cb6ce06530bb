/**
 * Mistakes in what the user gave us (a recipe, an experiment, a checkpoint, a flag), as data: each
 * problem carries where the wrong text is (file, line, column, field) apart from what is wrong, so
 * that layers which move text around (a sweep fills recipe templates) can move the position too,
 * and the command line renders every problem once, at the edge.
 */

/** A position in a text file; line and col are 1-based. */
export interface SourcePos {
  file: string;
  line?: number;
  col?: number;
}

export interface Problem extends Partial<SourcePos> {
  /** What is wrong and what was expected. */
  message: string;
  /** The field the position is in, as a path: `models[1].parameters.weight`. */
  field?: string;
  /** Which part of the file: `stage 2 (math_dare)`, `variant chained`. */
  context?: string;
  /** A known name near the unknown one. */
  suggestion?: string;
  /** For a sweep: how many of its points the problem is found in, of how many. */
  points?: { count: number; of: number };
}

/** `file:line:col`, `file`, or '' when nothing is known. */
export function formatPos(p: Partial<SourcePos>): string {
  if (!p.file) return '';
  if (p.line === undefined) return p.file;
  return `${p.file}:${p.line}${p.col === undefined ? '' : `:${p.col}`}`;
}

/** One line (or a few, for a multi-line message): `file:3:7: stage 2, field merge_method: unknown ... (did you mean 'dare_ties'?)`. */
export function formatProblem(p: Problem): string {
  const head = [p.context, p.field ? `field ${p.field}` : ''].filter(Boolean).join(', ');
  const where = formatPos(p);
  let s = `${where ? `${where}: ` : ''}${head ? `${head}: ` : ''}${p.message}`;
  if (p.suggestion !== undefined) s += ` (did you mean '${p.suggestion}'?)`;
  if (p.points && p.points.of > 1) s += ` [${p.points.count === p.points.of ? `all ${p.points.of} points` : `${p.points.count} of ${p.points.of} points`}]`;
  return s;
}

export function formatProblems(ps: readonly Problem[], file?: string): string {
  if (ps.length === 1) return formatProblem(ps[0]);
  return `${ps.length} problems${file ? ` in ${file}` : ''}:\n` + ps.map((p) => `  - ${formatProblem(p).replace(/\n/g, '\n    ')}`).join('\n');
}

/** Problems in the order a reader meets them: by file, then line and column; positionless last. */
export function sortProblems(ps: readonly Problem[]): Problem[] {
  const key = (p: Problem) => [p.file ?? '\uffff', p.line ?? Infinity, p.col ?? Infinity] as const;
  return ps
    .map((p, i) => ({ p, i }))
    .sort((a, b) => {
      const [fa, la, ca] = key(a.p);
      const [fb, lb, cb] = key(b.p);
      return fa < fb ? -1 : fa > fb ? 1 : la - lb || ca - cb || a.i - b.i;
    })
    .map((x) => x.p);
}

/**
 * A mistake in what the user gave us. The CLI prints it without a stack trace and exits with 1;
 * the message must name the file, the field and what was expected.
 */
export class UserError extends Error {
  readonly file?: string;
  readonly field?: string;
  /** The problems this error reports (one for an error made from a message). */
  readonly problems: readonly Problem[];
  constructor(message: string | Problem, opts: { file?: string; field?: string; cause?: unknown; problems?: readonly Problem[] } = {}) {
    super(typeof message === 'string' ? message : formatProblem(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'UserError';
    this.file = opts.file ?? (typeof message === 'string' ? undefined : message.file);
    this.field = opts.field ?? (typeof message === 'string' ? undefined : message.field);
    this.problems = opts.problems ?? [typeof message === 'string' ? { message } : message];
  }
}

/** Several user mistakes found in one pass (validate reports all of them, not only the first). */
export class UserErrors extends UserError {
  constructor(problems: ReadonlyArray<Problem | string>, opts: { file?: string } = {}) {
    const list = problems.map((p) => (typeof p === 'string' ? { message: p } : p));
    super(formatProblems(list, opts.file), { ...opts, problems: list });
    this.name = 'UserErrors';
  }
}

/** One problem as a UserError, several as UserErrors. */
export function problemsError(problems: ReadonlyArray<Problem | string>, file?: string): UserError {
  if (problems.length === 1) {
    const p = problems[0];
    return new UserError(p, { file: file ?? (typeof p === 'string' ? undefined : p.file) });
  }
  return new UserErrors(problems, { file });
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
