import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { UserError } from '../../util/errors.js';
import { runExperiment } from '../../sweep/runner.js';
import { EXECUTOR_NAMES, type ExecutorName } from '../../sweep/executor.js';
import { askOnTerminal } from '../../sweep/interrupt.js';

export function register(program: Command): void {
  program
    .command('run')
    .description('Run an experiment: plan its sweep, merge and evaluate every point (resuming from the cache), write reports/EXP/')
    .argument('<experiment>', 'experiment file (experiments/NAME.yaml)')
    .option('--dry-run', 'print every point, the stages it needs and what is cached; run nothing')
    .option('-j, --jobs <n>', 'worker processes taking merge and evaluation tasks (default: the number of cores, at most 4)', String(Math.min(4, availableParallelism())))
    .option('--keep-models', 'keep every merged checkpoint (linked from reports/EXP/models/)')
    .option('--backend <name>', 'merge kernel backend: auto, typed, tfjs, tfjs-wasm, tfjs-cpu, tfjs-node, tfjs-node-gpu', 'auto')
    .option('--reports <dir>', 'folder holding reports/EXP', 'reports')
    .option('--zoo <dir>', 'folder that zoo:NAME models are read from (default: data/zoo)')
    .option('--fresh', "delete this experiment's cache before running")
    .option('--no-report', 'skip the HTML report (results.csv and results.json are still written)')
    .option('--progress <mode>', 'auto (a bar on a terminal), bar, lines or none', 'auto')
    .option('--executor <name>', "who runs the tasks: local (worker processes here) or slurm (job arrays); default: the experiment's executor.kind, else local")
    .option('--on-interrupt <what>', 'Slurm: what Ctrl-C does with the jobs: ask, cancel or leave (default: ask on a terminal, else leave)')
    .action(async (file: string, o: { dryRun?: boolean; jobs: string; keepModels?: boolean; backend: string; reports: string; zoo?: string; fresh?: boolean; report: boolean; progress: string; executor?: string; onInterrupt?: string }) => {
      const jobs = Number(o.jobs);
      if (!Number.isInteger(jobs) || jobs < 1) throw new UserError(`--jobs ${o.jobs}: expected a whole number >= 1`, { field: '--jobs' });
      if (!['auto', 'bar', 'lines', 'none'].includes(o.progress)) throw new UserError(`--progress ${o.progress}: expected auto, bar, lines or none`, { field: '--progress' });
      const { isBackendName, BACKEND_NAMES } = await import('../../kernels/index.js');
      if (!isBackendName(o.backend)) throw new UserError(`--backend ${o.backend}: expected one of ${BACKEND_NAMES.join(', ')}`, { field: '--backend' });
      if (o.executor !== undefined && !(EXECUTOR_NAMES as readonly string[]).includes(o.executor)) throw new UserError(`--executor ${o.executor}: expected ${EXECUTOR_NAMES.join(' or ')}`, { field: '--executor' });
      const onInterrupt = o.onInterrupt ?? (process.stdin.isTTY ? 'ask' : 'leave');
      if (!['ask', 'cancel', 'leave'].includes(onInterrupt)) throw new UserError(`--on-interrupt ${onInterrupt}: expected ask, cancel or leave`, { field: '--on-interrupt' });
      // Ctrl-C stops the run cleanly (a second one exits at once).
      const ac = new AbortController();
      const onSigint = (): void => (ac.signal.aborted ? process.exit(130) : ac.abort());
      process.on('SIGINT', onSigint);
      const summary = await runExperiment(file, {
        dryRun: o.dryRun,
        jobs,
        keepModels: o.keepModels,
        backend: o.backend,
        reportsDir: o.reports,
        zooDir: o.zoo,
        fresh: o.fresh,
        report: o.report,
        progress: o.progress as 'auto' | 'bar' | 'lines' | 'none',
        executor: o.executor as ExecutorName | undefined,
        onInterrupt: onInterrupt === 'ask' ? askOnTerminal() : (onInterrupt as 'cancel' | 'leave'),
        signal: ac.signal,
      }).finally(() => process.off('SIGINT', onSigint));
      if (summary.interrupted) process.exitCode = 130;
      else if (summary.failed > 0) process.exitCode = 1;
    });
}
