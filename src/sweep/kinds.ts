/** Names that the experiment file's schema and the sweep's modules both use, kept apart so that neither imports the other for them. */

/** Who runs a sweep's tasks: worker processes here, or a Slurm cluster. */
export type ExecutorName = 'local' | 'slurm';
export const EXECUTOR_NAMES: readonly ExecutorName[] = ['local', 'slurm'];

/** The kinds of work in a sweep's task graph. */
export type WorkKind = 'merge' | 'eval' | 'pointdiag';
