/** `mergelab run EXP.yaml`: plan, merge, evaluate and report a sweep, resuming from its cache. */
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { UserError } from '../../util/errors.js';
import { EXECUTOR_NAMES, type ExecutorName } from '../../sweep/executor.js';
import { EXIT } from '../exit.js';
import { trapInterrupts } from '../interrupt.js';

const PROGRESS_MODES = ['auto', 'bar', 'lines', 'none'] as const;
type ProgressMode = (typeof PROGRESS_MODES)[number];

/** Workers when --jobs is not given: one per core, at most 4 (each holds a model's tensors). */
export function defaultJobs(): number {
  return Math.min(4, availableParallelism());
}

function jobsFlag(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`--jobs ${v}: expected a whole number >= 1`, { field: '--jobs' });
  return n;
}

function progressFlag(v: string): ProgressMode {
  if (!(PROGRESS_MODES as readonly string[]).includes(v)) throw new UserError(`--progress ${v}: expected ${PROGRESS_MODES.join(', ')}`, { field: '--progress' });
  return v as ProgressMode;
}

/** The command that resumes this run: the same one, less --fresh (which would delete what was saved). */
export function resumeCommand(argv: readonly string[]): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['mergelab', ...argv.filter((a) => a !== '--fresh')].map(quote).join(' ');
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run an experiment: plan its sweep, merge and evaluate every point (resuming from the cache), write reports/EXP/')
    .argument('<experiment>', 'experiment file (experiments/NAME.yaml)')
    .option('--dry-run', 'check the file and every recipe of the sweep (all problems at once), print every point, the stages it needs and what is cached; run nothing')
    .option('-j, --jobs <n>', `worker processes taking merge and evaluation tasks (default: the number of cores, at most 4; here ${defaultJobs()})`, jobsFlag)
    .option('--keep-models', 'keep every merged checkpoint (linked from reports/EXP/models/)')
    .option('--backend <name>', 'merge kernel backend: auto, typed, tfjs, tfjs-wasm, tfjs-cpu, tfjs-node, tfjs-node-gpu', 'auto')
    .option('--reports <dir>', 'folder holding reports/EXP', 'reports')
    .option('--zoo <dir>', 'folder that zoo:NAME models are read from (default: data/zoo)')
    .option('--fresh', "delete this experiment's cache before running")
    .option('--no-report', 'skip the HTML report (results.csv and results.json are still written)')
    .option('--progress <mode>', 'auto (a bar on a terminal), bar, lines or none', progressFlag, 'auto' as ProgressMode)
    .option('--executor <name>', "who runs the tasks: local (worker processes here) or slurm (job arrays); default: the experiment's executor.kind, else local")
    .option('--on-interrupt <what>', 'Slurm: what Ctrl-C does with the jobs: ask, cancel or leave (default: ask on a terminal, else leave)')
    .action(async (file: string, o: { dryRun?: boolean; jobs?: number; keepModels?: boolean; backend: string; reports: string; zoo?: string; fresh?: boolean; report: boolean; progress: ProgressMode; executor?: string; onInterrupt?: string }) => {
      const { isBackendName, BACKEND_NAMES } = await import('../../kernels/index.js');
      if (!isBackendName(o.backend)) throw new UserError(`--backend ${o.backend}: expected one of ${BACKEND_NAMES.join(', ')}`, { field: '--backend' });
      if (o.executor !== undefined && !(EXECUTOR_NAMES as readonly string[]).includes(o.executor)) throw new UserError(`--executor ${o.executor}: expected ${EXECUTOR_NAMES.join(' or ')}`, { field: '--executor' });
      const onInterrupt = o.onInterrupt ?? (process.stdin.isTTY ? 'ask' : 'leave');
      if (!['ask', 'cancel', 'leave'].includes(onInterrupt)) throw new UserError(`--on-interrupt ${onInterrupt}: expected ask, cancel or leave`, { field: '--on-interrupt' });
      const { askOnTerminal } = await import('../../sweep/interrupt.js');
      const { runExperiment } = await import('../../sweep/runner.js');
      let saved = { done: 0, total: 0 };
      const resume = resumeCommand(process.argv.slice(2));
      const stop = trapInterrupts({
        onSoft: () => 'starting no new task; letting the running ones finish and saving their points',
        onHard: () => 'stopping the running tasks',
        onForcedExit: () => `interrupted: ${saved.done} of ${saved.total} points saved; run \`${resume}\` again to resume`,
      });
      try {
        const summary = await runExperiment(file, {
          dryRun: o.dryRun,
          jobs: o.jobs ?? defaultJobs(),
          keepModels: o.keepModels,
          backend: o.backend,
          reportsDir: o.reports,
          zooDir: o.zoo,
          fresh: o.fresh,
          report: o.report,
          progress: o.progress,
          executor: o.executor as ExecutorName | undefined,
          onInterrupt: onInterrupt === 'ask' ? askOnTerminal() : (onInterrupt as 'cancel' | 'leave'),
          drain: stop.soft,
          signal: stop.hard,
          onSaved: (done, total) => (saved = { done, total }),
        });
        if (summary.interrupted) {
          process.stderr.write(`interrupted: ${summary.records.length} of ${summary.points} points saved in ${summary.resultsFile}; run \`${resume}\` again to resume\n`);
          process.exitCode = EXIT.interrupted;
        } else if (summary.failed > 0) process.exitCode = EXIT.input;
      } finally {
        stop.dispose();
      }
    });
}
