import { promises as fs, createWriteStream } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ENGINE_VERSION } from '../merge/engine.js';
import { ResultRecord } from '../results/record.js';
import { appendResult, loadResults, resultsPath, writeResults } from '../results/store.js';
import { writeExports } from '../results/export.js';
import { formatReportSummary, generateReport } from '../report/index.js';
import { UserError, isUserError } from '../util/errors.js';
import { CacheLayout, clearTmp, exists, readJson, removeStageDir, stageComplete } from './cache.js';
import { loadExperiment, type Experiment } from './experiment.js';
import { evaluatorVersion } from './evaluator.js';
import { FolderHasher, contentKey, sha256, weightBytes } from './hash.js';
import { buildPlan, type Plan, type PointNode, type StageNode } from './plan.js';
import { WorkerPool } from './pool.js';
import { createProgress } from './progress.js';
import type { EvalFile, PointDiagFile, StageDiagFile, Task } from './tasks.js';

/**
 * `mergelab run EXP.yaml`: plan the sweep, work out what the cache already holds, then run the
 * remaining merges, evaluations and point diagnostics as a dependency graph on N worker
 * processes, appending one record per finished point to results.jsonl.
 *
 * Resume is exact because a record is a pure function of cache files (stage diagnostics,
 * evaluation, point diagnostics), each written atomically under a content key: a restarted run
 * rebuilds the records of finished points from the cache and does only the missing work.
 */

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
}

export interface RunSummary {
  experiment: string;
  expDir: string;
  resultsFile: string;
  points: number;
  /** Points whose record could be rebuilt from the cache at start. */
  pointsCachedAtStart: number;
  failed: number;
  merges: {
    performed: number;
    /** Stage uses (summed over points) that needed no merge of their own: shared within the run or cached. */
    reused: number;
    /** Distinct stages already in the cache at start (diagnostics present). */
    cachedAtStart: number;
    /** Merges performed, per stage name. */
    byStage: Record<string, number>;
  };
  evaluations: { performed: number; reused: number };
  pointDiagnostics: number;
  wallSeconds: number;
  diskEstimateBytes: number;
  reportPath: string | null;
  records: ResultRecord[];
}

interface Have {
  diag: Set<string>;
  folder: Set<string>;
  evals: Set<string>;
  pds: Set<string>;
}

type NodeKind = 'merge' | 'eval' | 'pointdiag';
interface GraphNode {
  id: string;
  kind: NodeKind;
  task: Task;
  deps: Set<string>;
  dependents: string[];
  state: 'waiting' | 'running' | 'done' | 'failed';
  error?: string;
  /** Smallest index of a point that needs this node (scheduling order). */
  order: number;
  label: string;
  /** Stage folder this node reads (released when it finishes). */
  reads: string | null;
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${u[i]}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function acquireLock(expDir: string): Promise<() => Promise<void>> {
  const lock = path.join(expDir, '.run.lock');
  await fs.mkdir(expDir, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(lock, String(process.pid), { flag: 'wx' });
      return async () => {
        await fs.rm(lock, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await fs.readFile(lock, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
        throw new UserError(`${expDir}: another run of this experiment is in progress (process ${pid}); wait for it or stop it (${lock})`);
      }
      // The holder died (killed, crashed): its lock is stale.
      await fs.rm(lock, { force: true });
    }
  }
  throw new UserError(`${expDir}: could not take the run lock ${lock}`);
}

/** Version of the evaluation: the evaluator's, plus the content of the suite files used. */
async function evalVersion(exp: Experiment): Promise<string> {
  const { DEFAULT_EVALS_DIR: evalsDir } = await import('../eval/evaluate.js');
  const parts = [await evaluatorVersion()];
  for (const s of exp.eval.suites) {
    for (const ext of ['yaml', 'jsonl']) {
      try {
        parts.push(sha256(await fs.readFile(path.join(evalsDir, `${s}.${ext}`))));
      } catch {
        parts.push(`${s}.${ext}:absent`);
      }
    }
  }
  return contentKey(parts);
}

async function checkSuites(exp: Experiment): Promise<void> {
  const { loadTask } = await import('../eval/task.js');
  const { DEFAULT_EVALS_DIR } = await import('../eval/evaluate.js');
  const problems: string[] = [];
  for (let i = 0; i < exp.eval.suites.length; i++) {
    try {
      await loadTask(exp.eval.suites[i], DEFAULT_EVALS_DIR);
    } catch (e) {
      if (!isUserError(e)) throw e;
      problems.push(`${exp.where(['eval', 'suites', i])}: field eval.suites[${i}]: ${e.message}`);
    }
  }
  if (problems.length) throw new UserError(problems.join('\n'), { file: exp.file });
}

async function scanCache(plan: Plan, layout: CacheLayout): Promise<Have> {
  const have: Have = { diag: new Set(), folder: new Set(), evals: new Set(), pds: new Set() };
  for (const key of plan.stages.keys()) {
    if (await exists(layout.diagFile(key))) have.diag.add(key);
    if (await stageComplete(layout, key)) have.folder.add(key);
  }
  for (const p of plan.points) {
    if (await exists(layout.evalFile(p.evalKey))) have.evals.add(p.evalKey);
    if (p.pointDiag && (await exists(layout.pointDiagFile(p.pointDiag.key)))) have.pds.add(p.pointDiag.key);
  }
  return have;
}

function pointComplete(p: PointNode, have: Have): boolean {
  return have.evals.has(p.evalKey) && (!p.pointDiag || have.pds.has(p.pointDiag.key)) && p.stages.every((k) => have.diag.has(k));
}

/** Which stages must be merged, given what the cache holds and what unfinished points need. */
function neededMerges(plan: Plan, have: Have): Set<string> {
  const merges = new Set<string>();
  const needMerge = (key: string): void => {
    if (merges.has(key)) return;
    merges.add(key);
    for (const inp of Object.values(plan.stages.get(key)!.inputs)) if (inp.kind === 'stage') needFolder(inp.key);
  };
  const needFolder = (key: string): void => {
    if (!have.folder.has(key)) needMerge(key);
  };
  for (const p of plan.points) {
    if (pointComplete(p, have)) continue;
    if (p.role === 'merge' && (!have.evals.has(p.evalKey) || (p.pointDiag && !have.pds.has(p.pointDiag.key)))) needFolder(p.modelKey);
    for (const k of p.stages) if (!have.diag.has(k)) needMerge(k);
  }
  return merges;
}

function stageLine(s: StageNode, state: string): string {
  return `    ${s.name} (${s.method}${s.random ? `, seed ${s.seed}` : ''}) ${s.key.slice(0, 10)}: ${state}`;
}

function describePlan(plan: Plan, have: Have, merges: Set<string>, out: (l: string) => void): void {
  const printed = new Set<string>();
  for (const p of plan.points) {
    const complete = pointComplete(p, have);
    out(`${complete ? '[cached]' : '[to run]'} ${p.id}`);
    if (p.role !== 'merge') {
      out(`    reference ${p.modelDir}: evaluation ${have.evals.has(p.evalKey) ? 'cached' : 'to run'}`);
      continue;
    }
    for (const k of p.stages) {
      const s = plan.stages.get(k)!;
      const shared = s.points.length > 1 ? (printed.has(k) ? ', shared (listed above)' : `, shared by ${s.points.length} points`) : '';
      printed.add(k);
      const state = merges.has(k)
        ? have.folder.has(k)
          ? 'cached checkpoint, diagnostics to recompute'
          : 'to merge'
        : have.folder.has(k)
          ? 'cached'
          : 'merged earlier (checkpoint deleted, diagnostics kept)';
      out(stageLine(s, state + shared));
    }
    out(`    evaluation: ${have.evals.has(p.evalKey) ? 'cached' : 'to run'}${p.pointDiag ? `; final-vs-parents diagnostics: ${have.pds.has(p.pointDiag.key) ? 'cached' : 'to compute'}` : ''}`);
  }
}

function sanitizeMetrics(m: Record<string, Record<string, number | null>>): Record<string, Record<string, number>> {
  // JSON has no NaN: a metric over zero items comes back as null and is left out of the record.
  const out: Record<string, Record<string, number>> = {};
  for (const [suite, ms] of Object.entries(m)) {
    out[suite] = {};
    for (const [k, v] of Object.entries(ms)) if (typeof v === 'number' && Number.isFinite(v)) out[suite][k] = v;
  }
  return out;
}

/** A point's record, from cache files only (so a resumed run writes the same bytes). */
async function assembleRecord(plan: Plan, p: PointNode, layout: CacheLayout, failure: string | null, backend: string): Promise<ResultRecord> {
  const exp = plan.experiment;
  const diagnostics: unknown[] = [];
  const timings: Record<string, number> = {};
  let mergeSeconds = 0;
  for (const k of p.stages) {
    if (await exists(layout.diagFile(k))) {
      const d = await readJson<StageDiagFile>(layout.diagFile(k));
      diagnostics.push(d.diagnostics);
      mergeSeconds += d.seconds;
    }
  }
  if (p.stages.length) timings.merge_s = mergeSeconds;
  if (p.pointDiag && (await exists(layout.pointDiagFile(p.pointDiag.key)))) {
    const d = await readJson<PointDiagFile>(layout.pointDiagFile(p.pointDiag.key));
    diagnostics.push(d.diagnostics);
    timings.point_diagnostics_s = d.seconds;
  }
  const base = {
    experiment: exp.name,
    point: p.id,
    role: p.role,
    variant: p.variant,
    axes: p.axes,
    seed: p.seed,
    recipe: p.recipe,
    engineVersion: ENGINE_VERSION,
    diagnostics,
  };
  if (failure === null) {
    const e = await readJson<EvalFile>(layout.evalFile(p.evalKey));
    timings.eval_s = e.seconds;
    for (const [k, v] of Object.entries(e.result.timings ?? {})) timings[`eval_${k}_s`] = v;
    return ResultRecord.parse({ ...base, backend: e.result.backend, status: 'ok', metrics: sanitizeMetrics(e.result.metrics), timings, samples: e.result.samples });
  }
  return ResultRecord.parse({ ...base, backend, status: 'failed', error: failure, metrics: {}, timings, samples: [] });
}

export async function runExperiment(file: string, opts: RunOptions = {}): Promise<RunSummary> {
  const t0 = performance.now();
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const jobs = Math.max(1, Math.floor(opts.jobs ?? 1));
  const backend = opts.backend ?? 'auto';
  const exp = await loadExperiment(file, { zooDir: opts.zooDir });
  await checkSuites(exp);
  const expDir = path.resolve(opts.reportsDir ?? 'reports', exp.name);
  const layout = new CacheLayout(path.join(expDir, 'cache'));
  const release = opts.dryRun ? async () => {} : await acquireLock(expDir);
  try {
    if (opts.fresh && !opts.dryRun) await fs.rm(layout.root, { recursive: true, force: true });
    if (!opts.dryRun) await clearTmp(layout);
    const hasher = new FolderHasher(layout.hashMemo(), !!opts.dryRun);
    const plan = await buildPlan(exp, { hasher, evaluatorVersion: await evalVersion(exp) });
    const have = await scanCache(plan, layout);
    const merges = neededMerges(plan, have);
    const completeAtStart = plan.points.filter((p) => pointComplete(p, have));
    const nRefs = plan.points.filter((p) => p.role !== 'merge').length;
    const evalsToRun = new Set(plan.points.filter((p) => !have.evals.has(p.evalKey)).map((p) => p.evalKey));
    out(`experiment ${exp.name} (${exp.file}): ${plan.points.length} points (${nRefs} references, ${plan.points.length - nRefs} merges), ${plan.stages.size} distinct stages`);
    out(`cache ${layout.root}: ${completeAtStart.length}/${plan.points.length} points complete, ${have.diag.size}/${plan.stages.size} stages merged before (${have.folder.size} checkpoints on disk); to do: ${merges.size} merges, ${evalsToRun.size} evaluations`);

    // Disk: every merge writes about one model's weights.
    const modelBytes = Math.max(0, ...(await Promise.all(Object.values(plan.modelDirs).map((d) => weightBytes(d)))));
    // A stage other stages read stays on disk until its last reader is done: count those as held.
    const upstream = new Set([...plan.stages.values()].flatMap((s) => Object.values(s.inputs).flatMap((i) => (i.kind === 'stage' ? [i.key] : []))));
    const intermediates = [...merges].filter((k) => upstream.has(k)).length;
    const total = merges.size * modelBytes;
    const peak = opts.keepModels ? total : Math.min(merges.size, intermediates + jobs) * modelBytes;
    let free: number | null = null;
    try {
      let at = expDir;
      while (!(await exists(at)) && path.dirname(at) !== at) at = path.dirname(at);
      const st = await fs.statfs(at);
      free = st.bavail * st.bsize;
    } catch {
      free = null;
    }
    out(
      `disk needed: ${fmtBytes(peak)} at most at once (${merges.size} merges x ~${fmtBytes(modelBytes)}${opts.keepModels ? ', all kept (--keep-models)' : `; checkpoints are deleted once evaluated, ${fmtBytes(total)} written in all`})${free !== null ? `; ${fmtBytes(free)} free` : ''}`,
    );
    if (free !== null && peak > free) out(`warning: the run may need more disk than is free at ${expDir}`);

    if (opts.dryRun) {
      describePlan(plan, have, merges, out);
      return {
        experiment: exp.name,
        expDir,
        resultsFile: resultsPath(expDir),
        points: plan.points.length,
        pointsCachedAtStart: completeAtStart.length,
        failed: 0,
        merges: { performed: 0, reused: 0, cachedAtStart: have.diag.size, byStage: {} },
        evaluations: { performed: 0, reused: 0 },
        pointDiagnostics: 0,
        wallSeconds: (performance.now() - t0) / 1000,
        diskEstimateBytes: peak,
        reportPath: null,
        records: [],
      };
    }
    return await execute(plan, layout, have, merges, { ...opts, jobs, backend, out, t0, expDir, peak, completeAtStart });
  } finally {
    await release();
  }
}

interface ExecCtx extends RunOptions {
  jobs: number;
  backend: string;
  out: (l: string) => void;
  t0: number;
  expDir: string;
  peak: number;
  completeAtStart: PointNode[];
}

async function execute(plan: Plan, layout: CacheLayout, have: Have, merges: Set<string>, ctx: ExecCtx): Promise<RunSummary> {
  const { expDir, out } = ctx;
  const exp = plan.experiment;
  const resultsFile = resultsPath(expDir);
  const prior = await loadResults(resultsFile, { repair: true });
  if (prior.droppedBytes) out(`results: dropped a truncated last line (${prior.droppedBytes} bytes) left by an interrupted run`);
  await fs.writeFile(path.join(expDir, 'experiment.json'), JSON.stringify({ name: exp.name, file: exp.file, description: exp.description ?? null, report: exp.report, eval: exp.eval }, null, 1) + '\n');

  // Start the store from what the cache proves done, in plan order; stale lines (points no longer
  // in the file, records of failures) go.
  const records = new Map<string, ResultRecord>();
  for (const p of ctx.completeAtStart) records.set(p.id, await assembleRecord(plan, p, layout, null, ctx.backend));
  await writeResults(resultsFile, plan.points.filter((p) => records.has(p.id)).map((p) => records.get(p.id)!));

  // The task graph.
  const nodes = new Map<string, GraphNode>();
  const add = (n: Omit<GraphNode, 'dependents' | 'state'>): GraphNode => {
    const existing = nodes.get(n.id);
    if (existing) {
      existing.order = Math.min(existing.order, n.order);
      return existing;
    }
    const node: GraphNode = { ...n, dependents: [], state: 'waiting' };
    nodes.set(n.id, node);
    return node;
  };
  const pointOrder = new Map(plan.points.map((p) => [p.id, p.index]));
  const mergeId = (k: string) => `merge:${k}`;
  for (const key of merges) {
    const s = plan.stages.get(key)!;
    const inputs: Record<string, string> = {};
    const deps = new Set<string>();
    for (const [ref, inp] of Object.entries(s.inputs)) {
      if (inp.kind === 'model') inputs[ref] = inp.dir;
      else {
        inputs[ref] = layout.stageDir(inp.key);
        if (merges.has(inp.key)) deps.add(mergeId(inp.key));
      }
    }
    add({
      id: mergeId(key),
      kind: 'merge',
      task: { type: 'merge', key, cacheRoot: layout.root, recipe: s.recipe, stageName: s.name, modelDirs: plan.modelDirs, inputs, seed: s.seed },
      deps,
      order: Math.min(...s.points.map((id) => pointOrder.get(id) ?? Infinity)),
      label: `merge ${s.name}`,
      reads: null,
    });
  }
  const pending = plan.points.filter((p) => !records.has(p.id));
  const pointDeps = new Map<string, Set<string>>();
  for (const p of pending) {
    const deps = new Set<string>();
    for (const k of p.stages) if (merges.has(k)) deps.add(mergeId(k));
    const finalDir = p.role === 'merge' ? layout.stageDir(p.modelKey) : p.modelDir!;
    const finalDep = p.role === 'merge' && merges.has(p.modelKey) ? [mergeId(p.modelKey)] : [];
    if (!have.evals.has(p.evalKey)) {
      const n = add({ id: `eval:${p.evalKey}`, kind: 'eval', task: { type: 'eval', key: p.evalKey, cacheRoot: layout.root, modelDir: finalDir, eval: exp.eval }, deps: new Set(finalDep), order: p.index, label: `eval ${p.id}`, reads: p.role === 'merge' ? p.modelKey : null });
      deps.add(n.id);
    }
    if (p.pointDiag && !have.pds.has(p.pointDiag.key)) {
      const n = add({
        id: `pd:${p.pointDiag.key}`,
        kind: 'pointdiag',
        task: { type: 'pointdiag', key: p.pointDiag.key, cacheRoot: layout.root, finalDir, base: p.pointDiag.base, parents: p.pointDiag.parents },
        deps: new Set(finalDep),
        order: p.index,
        label: `diagnostics ${p.id}`,
        reads: p.modelKey,
      });
      deps.add(n.id);
    }
    pointDeps.set(p.id, deps);
  }
  // Readers of each stage folder: merges of downstream stages, evaluations, point diagnostics.
  const readers = new Map<string, number>();
  for (const n of nodes.values()) {
    for (const d of n.deps) nodes.get(d)!.dependents.push(n.id);
    if (n.kind === 'merge') for (const inp of Object.values(plan.stages.get((n.task as { key: string }).key)!.inputs)) if (inp.kind === 'stage') readers.set(inp.key, (readers.get(inp.key) ?? 0) + 1);
    if (n.reads) readers.set(n.reads, (readers.get(n.reads) ?? 0) + 1);
  }
  const releaseFolder = async (key: string): Promise<void> => {
    const left = (readers.get(key) ?? 0) - 1;
    readers.set(key, left);
    if (left <= 0 && !ctx.keepModels) await removeStageDir(layout, key);
  };

  // Counters.
  const byStage: Record<string, number> = {};
  let mergesPerformed = 0;
  let evalsPerformed = 0;
  let pdsPerformed = 0;
  let failed = 0;

  const progress = createProgress(ctx.progress ?? 'auto', out);
  let tokens = 0;
  const state = () => ({ tokens, done: records.size, total: plan.points.length, running: [...nodes.values()].filter((n) => n.state === 'running').length, failed, activity: [...nodes.values()].filter((n) => n.state === 'running').map((n) => n.label).join(', ') });
  progress.start(state());

  let logStream: ReturnType<typeof createWriteStream> | null = createWriteStream(path.join(expDir, 'run.log'), { flags: 'a' });
  const pool = new WorkerPool(ctx.jobs, { backend: ctx.backend, log: logStream, onTokens: (n) => ((tokens += n), progress.update(state())) });

  // Points are recorded one at a time, in completion order; the file is put in plan order at the end.
  let recordChain: Promise<void> = Promise.resolve();
  const finishPoint = (p: PointNode, failure: string | null): void => {
    recordChain = recordChain.then(async () => {
      const rec = await assembleRecord(plan, p, layout, failure, ctx.backend);
      await appendResult(resultsFile, rec);
      records.set(p.id, rec);
      if (failure) failed++;
      const m = rec.metrics;
      const summary = Object.entries(m)
        .map(([s, ms]) => {
          const main = ms.exact_match_strict ?? ms.prompt_level_strict ?? ms.perplexity ?? Object.entries(ms).find(([k]) => k !== 'n')?.[1];
          return main === undefined ? null : `${s}=${Number(main).toFixed(3)}`;
        })
        .filter(Boolean)
        .join(' ');
      progress.update(state());
      progress.log(`${failure ? 'FAILED' : 'done'} ${p.id}${failure ? `: ${failure.split('\n')[0]}` : summary ? `: ${summary}` : ''}`);
    });
  };
  const checkPoints = (): void => {
    for (const p of pending) {
      if (records.has(p.id) || !pointDeps.has(p.id)) continue;
      const deps = [...pointDeps.get(p.id)!].map((d) => nodes.get(d)!);
      const bad = deps.find((d) => d.state === 'failed');
      if (bad || deps.every((d) => d.state === 'done')) {
        pointDeps.delete(p.id);
        finishPoint(p, bad ? bad.error! : null);
      }
    }
  };

  const fail = (n: GraphNode, error: string): void => {
    n.state = 'failed';
    n.error = error;
    for (const d of n.dependents) {
      const dn = nodes.get(d)!;
      if (dn.state === 'waiting') fail(dn, error);
    }
  };

  await new Promise<void>((resolveAll) => {
    let inFlight = 0;
    const ready = (): GraphNode[] =>
      [...nodes.values()]
        .filter((n) => n.state === 'waiting' && [...n.deps].every((d) => nodes.get(d)!.state === 'done'))
        // Evaluations first: they free checkpoints; then by the first point that needs the work.
        .sort((a, b) => (a.kind === 'merge' ? 1 : 0) - (b.kind === 'merge' ? 1 : 0) || a.order - b.order);
    const pump = (): void => {
      checkPoints();
      for (const n of ready()) {
        if (inFlight >= ctx.jobs) break;
        n.state = 'running';
        inFlight++;
        progress.update(state());
        pool.run(n.task).then(
          async (r) => {
            if (n.kind === 'merge') {
              if (!r.alreadyDone) {
                mergesPerformed++;
                const name = plan.stages.get((n.task as { key: string }).key)!.name;
                byStage[name] = (byStage[name] ?? 0) + 1;
              }
              if (!readers.get((n.task as { key: string }).key) && !ctx.keepModels) await removeStageDir(layout, (n.task as { key: string }).key);
            } else if (n.kind === 'eval') {
              if (!r.alreadyDone) evalsPerformed++;
            } else if (!r.alreadyDone) pdsPerformed++;
            n.state = 'done';
            await after(n);
          },
          async (e: Error) => {
            const what = n.kind === 'merge' ? `merge of stage ${plan.stages.get((n.task as { key: string }).key)!.name}` : n.kind === 'eval' ? 'evaluation' : 'final-vs-parents diagnostics';
            fail(n, `${what} failed: ${e.message}`);
            await after(n);
          },
        );
      }
      if (inFlight === 0 && ready().length === 0) {
        checkPoints();
        resolveAll();
      }
    };
    const after = async (n: GraphNode): Promise<void> => {
      inFlight--;
      if (n.kind === 'merge') for (const inp of Object.values(plan.stages.get((n.task as { key: string }).key)!.inputs)) if (inp.kind === 'stage') await releaseFolder(inp.key);
      if (n.reads) await releaseFolder(n.reads);
      pump();
    };
    pump();
  });
  await recordChain;
  await pool.close();
  progress.stop();
  await new Promise<void>((r) => logStream!.end(() => r()));
  logStream = null;

  // Points whose work never ran (an upstream failure cut them off) still get their failure record.
  for (const p of pending) if (!records.has(p.id)) finishPoint(p, 'not run: a task it depends on did not finish');
  await recordChain;

  const ordered = plan.points.map((p) => records.get(p.id)!).filter(Boolean);
  await writeResults(resultsFile, ordered);
  await writeExports(ordered, expDir);
  if (!ctx.keepModels) for (const key of plan.stages.keys()) await removeStageDir(layout, key);
  else await linkModels(plan, layout, expDir);

  let reportPath: string | null = null;
  if (ctx.report !== false) reportPath = await writeReport(expDir, out);

  // Reuse counts only uses that were served: a stage whose merge failed served nobody.
  const failedMerges = new Set([...nodes.values()].filter((n) => n.kind === 'merge' && n.state === 'failed').map((n) => (n.task as { key: string }).key));
  const stageUses = plan.points.reduce((a, p) => a + p.stages.filter((k) => !failedMerges.has(k)).length, 0);
  const okPoints = ordered.filter((r) => r.status === 'ok').length;
  const summary: RunSummary = {
    experiment: exp.name,
    expDir,
    resultsFile,
    points: plan.points.length,
    pointsCachedAtStart: ctx.completeAtStart.length,
    failed: ordered.filter((r) => r.status === 'failed').length,
    merges: { performed: mergesPerformed, reused: stageUses - mergesPerformed, cachedAtStart: have.diag.size, byStage },
    evaluations: { performed: evalsPerformed, reused: Math.max(0, okPoints - evalsPerformed) },
    pointDiagnostics: pdsPerformed,
    wallSeconds: (performance.now() - ctx.t0) / 1000,
    diskEstimateBytes: ctx.peak,
    reportPath,
    records: ordered,
  };
  printSummary(summary, out);
  return summary;
}

/** With --keep-models, each point's final model is reachable as reports/EXP/models/POINT. */
async function linkModels(plan: Plan, layout: CacheLayout, expDir: string): Promise<void> {
  const dir = path.join(expDir, 'models');
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  for (const p of plan.points) {
    if (p.role !== 'merge' || !(await stageComplete(layout, p.modelKey))) continue;
    const name = p.id.replace(/[^A-Za-z0-9._=-]+/g, '_');
    await fs.symlink(path.relative(dir, layout.stageDir(p.modelKey)), path.join(dir, name)).catch(() => undefined);
  }
}

/** The HTML report, charts and exports (src/report); a report failure does not undo the run's results. */
async function writeReport(expDir: string, out: (l: string) => void): Promise<string | null> {
  try {
    const summary = await generateReport(expDir);
    for (const line of formatReportSummary(summary).split('\n')) out(line);
    return summary.files.html;
  } catch (e) {
    out(`report: not written: ${e instanceof Error ? e.message : String(e)} (results.jsonl and results.csv are complete; retry with \`mergelab report ${expDir}\`)`);
    return null;
  }
}

export function printSummary(s: RunSummary, out: (l: string) => void): void {
  const byStage = Object.entries(s.merges.byStage)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  out(`summary of ${s.experiment}:`);
  out(`  points: ${s.points} (${s.pointsCachedAtStart} complete from the cache at start), failed: ${s.failed}`);
  out(`  merges performed: ${s.merges.performed}${byStage ? ` (${byStage})` : ''}`);
  out(`  merges reused from cache: ${s.merges.reused} (stage uses that needed no merge of their own; ${s.merges.cachedAtStart} stages were cached at start)`);
  out(`  evaluations performed: ${s.evaluations.performed}, reused: ${s.evaluations.reused}`);
  out(`  final-vs-parents diagnostics computed: ${s.pointDiagnostics}`);
  out(`  wall time: ${s.wallSeconds.toFixed(1)} s`);
  out(`  results: ${s.resultsFile}${s.reportPath ? `; report: ${s.reportPath}` : ''}`);
}

