import { promises as fs, createWriteStream } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ResultRecord } from '../results/record.js';
import { appendResult, loadResults, resultsPath, writeResults } from '../results/store.js';
import { checkExports, writeExports } from '../results/export.js';
import { isDiskFullMessage } from '../util/disk.js';
import { writeFileAtomic } from '../util/atomic.js';
import { watchLauncher } from '../util/parentWatch.js';
import { removeDeadTempsIn } from '../util/temp.js';
import { CacheLayout, clearTmp, removeStageDir, stageComplete } from './cache.js';
import { describeArrays, describePlan } from './describe.js';
import { diskLine, estimateDisk, fmtBytes, freeBytes } from './disk.js';
import type { ExecutionEnd, Executor, ExecutorName } from './executor.js';
import { createExecutor } from './executors/index.js';
import type { InterruptPolicy } from './executors/slurm/executor.js';
import { backendCommandProblems, suiteProblems } from './check.js';
import { DiskGate } from './diskGate.js';
import { evalCapacity } from './slots.js';
import { readExperiment, type Experiment } from './experiment.js';
import { FolderHasher, weightBytes } from './hash.js';
import { buildGraph, pointFileName, type TaskGraph } from './graph.js';
import { reapServers } from '../eval/backends/process.js';
import { acquireLock } from './lock.js';
import { buildPlan, type Plan, type PointNode } from './plan.js';
import { createProgress } from './progress.js';
import { assembleRecord, recordLine } from './record.js';
import { neededMerges, pointComplete, scanCache, type Have } from './scan.js';
import { Scheduler, type SchedulerListener } from './scheduler.js';
import { evalVersion } from './suites.js';
import { UserError, isUserError } from '../util/errors.js';
import { printSummary, type RunSummary } from './summary.js';

/**
 * `mergelab run EXP.yaml`: plan the sweep, work out what the cache already holds, turn the rest
 * into a task graph and hand it to an executor, appending one record per finished point to
 * results.jsonl; then exports, the report and the summary.
 *
 * Resume is exact because a record is a pure function of cache files (stage diagnostics,
 * evaluation, point diagnostics), each written atomically under a content key: a restarted run
 * rebuilds the records of finished points from the cache and does only the missing work.
 */

export type { RunSummary } from './summary.js';
export { printSummary } from './summary.js';

export interface RunOptions {
  jobs?: number;
  keepModels?: boolean;
  /** Kernel backend for merges ('auto', 'typed', 'tfjs-wasm', ...). */
  backend?: string;
  dryRun?: boolean;
  /** Folder holding reports/EXP (default `reports` in the working directory). */
  reportsDir?: string;
  /** Where `zoo:NAME` models live (default: the repository's data/zoo). */
  zooDir?: string;
  /** Delete this experiment's cache first. */
  fresh?: boolean;
  /** Write the HTML report at the end (default true). */
  report?: boolean;
  progress?: 'auto' | 'bar' | 'lines' | 'none';
  /** Where summary and plan lines go (default stdout). */
  out?: (line: string) => void;
  /** Stops the run: what is recorded stays recorded, the rest resumes on the next run. */
  signal?: AbortSignal;
  /** Who runs the tasks (default: the experiment's `executor.kind`, else local). */
  executor?: ExecutorName;
  /** Slurm: on interruption, cancel the jobs or leave them running (default leave). */
  onInterrupt?: InterruptPolicy;
  /**
   * Winds the run down: no task starts after it aborts, the running ones finish and their points
   * are recorded (`signal` then still stops them at once). The first Ctrl-C of `mergelab run`.
   */
  drain?: AbortSignal;
  /** Called whenever a point's record is saved: points with a record, of all points. */
  onSaved?: (saved: number, total: number) => void;
}

export async function runExperiment(file: string, opts: RunOptions = {}): Promise<RunSummary> {
  const t0 = performance.now();
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const jobs = Math.max(1, Math.floor(opts.jobs ?? 1));
  const backend = opts.backend ?? 'auto';
  // The file's own problems and its suites' are reported with its recipes', all at once, by buildPlan.
  const draft = await readExperiment(file, { zooDir: opts.zooDir });
  const exp = draft.experiment;
  const executorName = opts.executor ?? exp.executor.kind;
  // On Slurm the backend's program need only exist on the nodes (a `setup` line may load it).
  const commands = executorName === 'local' ? await backendCommandProblems(exp) : [];
  const prior = { problems: [...draft.problems, ...(await suiteProblems(exp)), ...commands], unavailableModels: draft.unavailableModels };
  const expDir = path.resolve(opts.reportsDir ?? 'reports', exp.name);
  const layout = new CacheLayout(path.join(expDir, 'cache'));
  // Plan before touching anything: a plan with problems leaves no reports/NAME folder behind. The
  // hash memo is read here and written only once the run holds the lock. Each damaged entry is
  // named once, then removed and recomputed (see scan.ts).
  const damaged = (entry: string, problem: string): void => out(`warning: damaged cache entry ${entry}: ${problem}; ${opts.dryRun ? 'it would be recomputed' : 'removed, recomputing it'}`);
  const hasher = new FolderHasher(opts.fresh ? null : layout.hashMemo(), true, damaged);
  const plan = await buildPlan(exp, { hasher, evaluatorVersion: await evalVersion(exp), prior });
  const release = opts.dryRun ? async () => {} : await acquireLock(expDir);
  // The run stops when the process that started it dies (a killed launcher or terminal): what is
  // recorded stays, the lock is released, and the next run resumes. See util/parentWatch.ts.
  const launcherGone = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, launcherGone.signal]) : launcherGone.signal;
  const unwatch = opts.dryRun
    ? () => undefined
    : watchLauncher((why) => {
        // Nobody reads our output any more; a write to a closed pipe must not end us before the lock is released.
        for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
        launcherGone.abort();
        // If stopping hangs, leave anyway: the lock of a dead process is stale and taken over.
        setTimeout(() => process.exit(1), 15_000).unref();
        void fs.appendFile(path.join(expDir, 'run.log'), `stopping: ${why}\n`).catch(() => undefined);
      });
  const logStream = opts.dryRun ? null : createWriteStream(path.join(expDir, 'run.log'), { flags: 'a' });
  // The log is for reading afterwards: a write it cannot make (a full disk) must not end the run.
  logStream?.on('error', () => undefined);
  try {
    const executor = logStream ? await createExecutor({ name: executorName, exp, expDir, jobs, backend, log: logStream, onInterrupt: opts.onInterrupt ?? 'leave' }) : null;
    if (executor) {
      const busy = await executor.busy();
      if (busy && opts.fresh) throw new UserError(`${expDir}: --fresh would delete the cache that jobs still use (${busy}); cancel them first (scancel) or run without --fresh`);
      // Temporary files of interrupted runs: the runner's own (exports, results), and, unless jobs
      // still write into the cache (their processes are on other machines, so their ids say
      // nothing here), the cache's (entries, work in tmp/) whose process is gone.
      const left = await removeDeadTempsIn(expDir);
      if (busy) out(`cache ${layout.tmpDir()} kept: ${busy}`);
      else {
        if (opts.fresh) {
          await fs.rm(layout.root, { recursive: true, force: true });
          // Slurm's record of earlier submissions (retry counts, logs) goes with the cache.
          await fs.rm(path.join(expDir, 'slurm'), { recursive: true, force: true });
        }
        left.push(...(await clearTmp(layout)));
      }
      if (left.length) out(`removed ${plural(left.length, 'temporary file')} left by interrupted runs (e.g. ${left[0]})`);
      hasher.allowWrites(layout.hashMemo());
      await hasher.save();
      // Servers of a run killed with SIGKILL (its pid files are all that is left of it) go first.
      const reaped = await reapServers(serversDir(expDir));
      if (reaped.length) out(`stopped ${plural(reaped.length, 'server')} left running by an earlier run (pid ${reaped.join(', ')})`);
    }
    for (const w of plan.warnings) out(`warning: ${w}`);
    const have = await scanCache(plan, layout, {
      repair: !opts.dryRun,
      keepModels: opts.keepModels,
      onDamaged: damaged,
      onUnchecked: (n, example) => out(`cache: ${n} entr${n === 1 ? 'y' : 'ies'} written by an older mergelab carry no checksum (e.g. ${example}); ${opts.dryRun ? 'they would be recomputed' : 'removed, recomputing them'}`),
    });
    const merges = neededMerges(plan, have, { keepModels: opts.keepModels });
    const completeAtStart = plan.points.filter((p) => pointComplete(p, have));
    const nRefs = plan.points.filter((p) => p.role !== 'merge').length;
    const evalsToRun = new Set(plan.points.filter((p) => !have.evals.has(p.evalKey)).map((p) => p.evalKey));
    out(`experiment ${exp.name} (${exp.file}): ${plan.points.length} points (${nRefs} references, ${plan.points.length - nRefs} merges), ${plan.stages.size} distinct stages`);
    out(`cache ${layout.root}: ${completeAtStart.length}/${plan.points.length} points complete, ${have.diag.size}/${plan.stages.size} stages merged before (${plural(have.folder.size, 'checkpoint')} on disk); to do: ${plural(merges.size, 'merge')}, ${plural(evalsToRun.size, 'evaluation')}`);

    const scorer = scorerLine(exp, jobs, executorName, expDir);
    if (scorer) out(scorer);
    const modelBytes = Math.max(0, ...(await Promise.all(Object.values(plan.modelDirs).map((d) => weightBytes(d)))));
    // Slurm may run every merge before any evaluation: its peak is everything.
    const bound = executorName === 'local' && !opts.keepModels ? exp.maxModelsOnDisk : null;
    const disk = { modelBytes, ...estimateDisk(plan, merges, modelBytes, { keepModels: !!opts.keepModels, concurrent: executorName === 'local' ? jobs : null, bound }), free: await freeBytes(expDir) };
    out(diskLine(merges.size, disk, !!opts.keepModels, bound ?? null));
    if (disk.free !== null && disk.peak > disk.free) {
      const held = opts.keepModels ? 'all kept' : bound != null ? `at most ${bound} at a time (max_models_on_disk)` : executorName === 'local' ? `${jobs} at a time` : 'all at once under Slurm';
      const what = `${expDir}: not enough free disk space: the run needs about ${fmtBytes(disk.peak)} at most at once (${plural(merges.size, 'merge')} x ~${fmtBytes(modelBytes)}, ${held}), ${fmtBytes(disk.free)} free there`;
      const fewer = opts.keepModels ? ', drop --keep-models' : executorName === 'local' ? (bound != null ? ', lower max_models_on_disk' : `, set max_models_on_disk${jobs > 1 ? ' or use fewer --jobs' : ''}`) : '';
      if (opts.dryRun) out(`warning: ${what}`);
      else throw new UserError(`${what}; free some space${fewer} or use another --reports folder`, { file: expDir });
    }

    const base = { experiment: exp.name, expDir, resultsFile: resultsPath(expDir), points: plan.points.length, pointsCachedAtStart: completeAtStart.length, diskEstimateBytes: disk.peak, executor: executorName };
    if (!executor) {
      describePlan(plan, have, merges, out);
      if (executorName === 'slurm') out(`slurm: would submit ${describeArrays(buildGraph(plan, layout, have, merges, { modelBytes }))}`);
      return {
        ...base,
        failed: 0,
        merges: { performed: 0, reused: 0, cachedAtStart: have.diag.size, byStage: {} },
        evaluations: { performed: 0, reused: 0 },
        pointDiagnostics: 0,
        wallSeconds: (performance.now() - t0) / 1000,
        reportPath: null,
        interrupted: null,
        records: [],
      };
    }
    const done = await execute(plan, layout, have, merges, executor, { ...opts, signal, backend, out, modelBytes, completeAtStart, expDir });
    const summary: RunSummary = { ...base, ...done, wallSeconds: (performance.now() - t0) / 1000 };
    printSummary(summary, out);
    return summary;
  } finally {
    unwatch();
    if (logStream) await new Promise<void>((r) => logStream.end(() => r()));
    await release();
  }
}

interface ExecCtx extends RunOptions {
  backend: string;
  out: (l: string) => void;
  modelBytes: number;
  completeAtStart: PointNode[];
  expDir: string;
}

type Executed = Pick<RunSummary, 'failed' | 'merges' | 'evaluations' | 'pointDiagnostics' | 'reportPath' | 'interrupted' | 'records'>;

/** Who scores the points and how many at once, for a backend other than the built-in one. */
function scorerLine(exp: Experiment, jobs: number, executor: ExecutorName, expDir: string): string | null {
  const b = exp.eval.backend;
  if (b.type === 'builtin') return null;
  const what = b.type === 'openai' ? (b.serve ? `a server per model: ${b.serve}` : `the server at ${b.endpoint}`) : b.type === 'lm-eval' ? `lm-eval: ${b.command}` : `command: ${b.cmd}`;
  const { gpus, gpus_per_eval } = exp.resources;
  const where = executor === 'slurm' ? 'as Slurm runs them' : `at most ${evalCapacity(exp, jobs)} at once${gpus.length ? ` on GPUs ${gpus.join(', ')} (${gpus_per_eval} each)` : ''}`;
  return `evaluations by ${what}; ${where}; logs in ${path.join(expDir, 'logs')}`;
}

/** Where a run keeps what its evaluations start: pid files of running servers. */
const serversDir = (expDir: string): string => path.join(expDir, 'servers');

/** GPUs an evaluation asks for: `gpus_per_eval` when GPUs are listed, or on Slurm for a backend that loads the model itself. */
function evalGpus(exp: Experiment, executor: ExecutorName): number {
  const b = exp.eval.backend;
  const loadsModel = b.type === 'lm-eval' || (b.type === 'openai' && b.serve !== undefined);
  return exp.resources.gpus.length > 0 || (executor === 'slurm' && loadsModel) ? exp.resources.gpus_per_eval : 0;
}

/**
 * `max_models_on_disk` as the scheduler's gate (local runs only: Slurm gets every task at once,
 * and --keep-models keeps everything). Checkpoints on disk that no task of this run reads are
 * deleted first, so that the bound counts what the run needs.
 */
async function diskGate(exp: Experiment, graph: TaskGraph, layout: CacheLayout, have: Have, executor: Executor, ctx: ExecCtx): Promise<DiskGate | null> {
  const bound = exp.maxModelsOnDisk;
  if (bound === null) return null;
  if (ctx.keepModels) {
    ctx.out(`max_models_on_disk ${bound}: not applied with --keep-models (every checkpoint is kept)`);
    return null;
  }
  if (executor.name !== 'local') {
    ctx.out(`max_models_on_disk ${bound}: not applied by the ${executor.name} executor (it submits every task at once)`);
    return null;
  }
  const gate = new DiskGate(graph, bound, [...have.folder].filter((k) => graph.readers.has(k)));
  if (gate.longestChain > bound) {
    throw new UserError(
      { ...exp.pos(['max_models_on_disk']), field: 'max_models_on_disk', message: `${bound} is less than the ${gate.longestChain} checkpoints a chain of stages of this sweep keeps on disk at once (a stage stays until the stages that read it are merged); set it to at least ${gate.longestChain}` },
      { file: exp.file },
    );
  }
  for (const k of have.folder) if (!graph.readers.has(k)) await removeStageDir(layout, k);
  return gate;
}

async function execute(plan: Plan, layout: CacheLayout, have: Have, merges: Set<string>, executor: Executor, ctx: ExecCtx): Promise<Executed> {
  const { expDir, out } = ctx;
  const exp = plan.experiment;
  const graph = buildGraph(plan, layout, have, merges, {
    modelBytes: ctx.modelBytes,
    evalGpus: evalGpus(exp, executor.name),
    logsDir: path.join(expDir, 'logs'),
    pidDir: serversDir(expDir),
    lmEvalDir: path.join(expDir, 'lm-eval'),
  });
  const gate = await diskGate(exp, graph, layout, have, executor, ctx);
  const resultsFile = resultsPath(expDir);
  // The store is rebuilt from the cache below, so a damaged one costs nothing but a warning.
  try {
    const prior = await loadResults(resultsFile, { repair: true });
    if (prior.droppedBytes) out(`results: dropped a truncated last line (${prior.droppedBytes} bytes) left by an interrupted run`);
  } catch (e) {
    if (!isUserError(e)) throw e;
    out(`warning: ${e.message.split(';')[0]}; rebuilt from the cache`);
  }
  for (const problem of await checkExports(expDir)) out(`warning: damaged export ${problem}; rewritten at the end of this run`);
  // The built-in backend is the default and goes unsaid, so a built-in sweep's experiment.json does not change with it.
  const { backend: evalBackend, ...evalRest } = exp.eval;
  const evalJson = evalBackend.type === 'builtin' ? evalRest : exp.eval;
  await writeFileAtomic(path.join(expDir, 'experiment.json'), JSON.stringify({ name: exp.name, file: exp.file, description: exp.description ?? null, report: exp.report, eval: evalJson }, null, 1) + '\n');

  // Start the store from what the cache proves done, in plan order; stale lines (points no longer
  // in the file, records of failures) go.
  const records = new Map<string, ResultRecord>();
  for (const p of ctx.completeAtStart) records.set(p.id, await assembleRecord(plan, p, layout, null, ctx.backend));
  await writeResults(resultsFile, plan.points.filter((p) => records.has(p.id)).map((p) => records.get(p.id)!));
  ctx.onSaved?.(records.size, plan.points.length);

  const byStage: Record<string, number> = {};
  let mergesPerformed = 0;
  let evalsPerformed = 0;
  let pdsPerformed = 0;
  let failed = 0;

  const progress = createProgress(ctx.progress ?? 'auto', out);
  let scheduler: Scheduler | null = null;
  let tokens = 0;
  const state = () => {
    const running = scheduler?.nodes('running') ?? [];
    const where = (id: string): string => (scheduler?.location(id) ? ` (${scheduler.location(id)})` : '');
    return { tokens, done: records.size, total: plan.points.length, running: running.length, failed, activity: running.map((n) => n.label + where(n.id)).join(', ') };
  };
  progress.start(state());

  // A stage folder is deleted once every node that reads it has settled.
  const readers = new Map(graph.readers);
  const dropStage = async (key: string): Promise<void> => {
    await removeStageDir(layout, key);
    gate?.released(key);
  };
  const releaseFolder = async (key: string): Promise<void> => {
    const left = (readers.get(key) ?? 0) - 1;
    readers.set(key, left);
    if (left <= 0 && !ctx.keepModels) await dropStage(key);
  };
  // Points are recorded one at a time, in completion order; the file is put in plan order at the end.
  let recordChain: Promise<void> = Promise.resolve();
  // A full disk stops the run (every later task would fail the same way): the points it touched
  // are not recorded as failed, and the next run, with space freed, resumes from the cache.
  const diskStop = new AbortController();
  const stop = ctx.signal ? AbortSignal.any([ctx.signal, diskStop.signal]) : diskStop.signal;
  let diskFull: string | null = null;
  const finishPoint = (p: PointNode, failure: string | null): void => {
    if (failure !== null && isDiskFullMessage(failure)) return;
    recordChain = recordChain.then(async () => {
      const rec = await assembleRecord(plan, p, layout, failure, ctx.backend);
      await appendResult(resultsFile, rec);
      records.set(p.id, rec);
      ctx.onSaved?.(records.size, plan.points.length);
      if (failure) failed++;
      progress.update(state());
      progress.log(recordLine(rec));
    });
  };
  const listener: SchedulerListener = {
    async settled(node, outcome) {
      if (!outcome.ok && isDiskFullMessage(outcome.error) && diskFull === null) {
        diskFull = outcome.error.split('\n')[0];
        diskStop.abort();
      }
      if (outcome.ok && !outcome.alreadyDone) {
        if (node.kind === 'merge') {
          mergesPerformed++;
          const name = plan.stages.get(node.writes!)!.name;
          byStage[name] = (byStage[name] ?? 0) + 1;
        } else if (node.kind === 'eval') evalsPerformed++;
        else pdsPerformed++;
      }
      if (outcome.ok && node.writes && !readers.get(node.writes) && !ctx.keepModels) await dropStage(node.writes);
      for (const k of node.reads) await releaseFolder(k);
      progress.update(state());
    },
    record: finishPoint,
  };
  scheduler = new Scheduler(graph, listener, gate);
  scheduler.start();
  const end: ExecutionEnd = await executor.run(scheduler, {
    signal: stop,
    drain: ctx.drain,
    log: (l) => progress.log(l),
    changed: () => progress.update(state()),
    tokens: (n) => {
      tokens += n;
      progress.update(state());
    },
  });
  await recordChain;
  progress.stop();
  // Work cut off by the interrupt left temporary folders; the finished stages stay for the rerun.
  if (end.interrupted && (await executor.busy()) === null) await clearTmp(layout);

  // Points whose work never ran (an upstream failure cut them off) still get their failure record;
  // after an interruption they get none: the next run resumes them.
  if (!end.interrupted) for (const p of scheduler.unrecorded()) finishPoint(p, 'not run: a task it depends on did not finish');
  await recordChain;

  const ordered = plan.points.map((p) => records.get(p.id)!).filter(Boolean);
  if (diskFull !== null) {
    // Put the store in order if there is room; the full disk is what the user must hear about.
    await writeResults(resultsFile, ordered).catch(() => undefined);
    throw new UserError(`${diskFull} (the run stopped there; run it again to resume from the cache)`);
  }
  await writeResults(resultsFile, ordered);
  await writeExports(ordered, expDir);
  let reportPath: string | null = null;
  if (!end.interrupted) {
    if (!ctx.keepModels) for (const key of plan.stages.keys()) await removeStageDir(layout, key);
    else await linkModels(plan, layout, expDir);
    if (ctx.report !== false) reportPath = await writeReport(expDir, out);
  }

  // Reuse counts only uses that were served: a stage whose merge failed served nobody.
  const failedMerges = new Set(scheduler.nodes('failed').flatMap((n) => (n.writes ? [n.writes] : [])));
  const stageUses = plan.points.reduce((a, p) => a + p.stages.filter((k) => !failedMerges.has(k)).length, 0);
  const okPoints = ordered.filter((r) => r.status === 'ok').length;
  return {
    failed: ordered.filter((r) => r.status === 'failed').length,
    merges: { performed: mergesPerformed, reused: stageUses - mergesPerformed, cachedAtStart: have.diag.size, byStage },
    evaluations: { performed: evalsPerformed, reused: Math.max(0, okPoints - evalsPerformed) },
    pointDiagnostics: pdsPerformed,
    reportPath,
    interrupted: end.interrupted ? end.note : null,
    records: ordered,
  };
}

/** With --keep-models, each point's final model is reachable as reports/EXP/models/POINT. */
async function linkModels(plan: Plan, layout: CacheLayout, expDir: string): Promise<void> {
  const dir = path.join(expDir, 'models');
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  for (const p of plan.points) {
    if (p.role !== 'merge' || !(await stageComplete(layout, p.modelKey))) continue;
    const name = pointFileName(p.id);
    await fs.symlink(path.relative(dir, layout.stageDir(p.modelKey)), path.join(dir, name)).catch(() => undefined);
  }
}

/** The HTML report, charts and exports (src/report); a report failure does not undo the run's results. */
async function writeReport(expDir: string, out: (l: string) => void): Promise<string | null> {
  try {
    // Loaded here: the report pulls in vega, which nothing else of a run needs.
    const { formatReportSummary, generateReport } = await import('../report/index.js');
    const summary = await generateReport(expDir);
    for (const line of formatReportSummary(summary).split('\n')) out(line);
    return summary.files.html;
  } catch (e) {
    out(`report: not written: ${e instanceof Error ? e.message : String(e)} (results.jsonl and results.csv are complete; retry with \`mergelab report ${expDir}\`)`);
    return null;
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
