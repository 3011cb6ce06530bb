import { promises as fs } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Kernels } from '../kernels/types.js';
import type { StageDiagnostics } from '../merge/diagnostics.js';
import { ENGINE_VERSION, mergeStage } from '../merge/engine.js';
import { resolveParsed } from '../recipe/recipe.js';
import { parseRecipeText } from '../recipe/source.js';
import { UserError, UserErrors } from '../util/errors.js';
import { DiskFullError } from '../util/disk.js';
import { checkCheckpoint } from '../checkpoint/manifest.js';
import { CacheLayout, DamagedEntryError, STAGE_MARKER, checkStage, publishDir, readEntry, removeStageDir, stageComplete, writeJsonAtomic } from './cache.js';
import type { EvalConfig } from './experiment.js';
import type { Gpu } from '../eval/backends/config.js';
import { runEvaluation, type EvalOutput } from './evaluator.js';
import { computeFinalVsParents, type FinalVsParents } from './pointDiagnostics.js';

/**
 * The units of work a worker process runs. Each reads its inputs from disk and leaves its result
 * in the cache under its key (atomically), so the parent never depends on what travels over IPC
 * beyond "done" or an error, and a task re-run after a crash writes the same bytes.
 */

export interface MergeTask {
  type: 'merge';
  key: string;
  cacheRoot: string;
  /** The point recipe (all stages); the worker re-parses it and merges stage `stageName`. */
  recipe: string;
  stageName: string;
  /** Experiment model name -> folder (for resolving the recipe). */
  modelDirs: Record<string, string>;
  /** Every input reference of the stage -> folder (models and upstream stage outputs). */
  inputs: Record<string, string>;
  seed: number;
  /** Merge models whose tensors differ in shape (the experiment allows crimes). */
  allowCrimes?: boolean;
}

export interface EvalTask {
  type: 'eval';
  key: string;
  cacheRoot: string;
  modelDir: string;
  eval: EvalConfig;
  /** Another backend than the built-in one: where its server's or lm_eval's output goes (appended). */
  logFile?: string;
  /** Folder of pid files of the servers it starts. */
  pidDir?: string;
  /** lm-eval: the folder its --output_path goes in (kept). */
  workDir?: string;
}

export interface PointDiagTask {
  type: 'pointdiag';
  key: string;
  cacheRoot: string;
  finalDir: string;
  base: { name: string; dir: string };
  parents: Array<{ name: string; dir: string }>;
}

export type Task = MergeTask | EvalTask | PointDiagTask;

export interface TaskResult {
  seconds: number;
  /** True when another process had already produced the result. */
  alreadyDone: boolean;
}

export interface StageDiagFile {
  key: string;
  engineVersion: string;
  diagnostics: StageDiagnostics;
  seconds: number;
}

export interface EvalFile {
  key: string;
  result: EvalOutput;
  seconds: number;
}

export interface PointDiagFile {
  key: string;
  diagnostics: FinalVsParents;
  seconds: number;
}

export interface TaskContext {
  kernels(): Promise<Kernels>;
  /** The GPUs this task was given, as CUDA_VISIBLE_DEVICES names them (empty: none); a task that starts a server hands them on. */
  gpus: Gpu[];
  /** The port a server this task starts listens on (absent: it picks a free one itself). */
  port?: number;
  /** Lines for the task's log (the server or lm_eval it started, the suites it scored). */
  log?: (line: string) => void;
  onProgress?: (fraction: number) => void;
  /** Tokens an evaluation has processed since the last call (the progress display's tokens/s). */
  onTokens?: (n: number) => void;
}

/**
 * A cached stage folder is checked against its checksums before it is read; a damaged one is
 * removed (the next run merges it again) and fails the task, naming it.
 */
async function checkRead(layout: CacheLayout, dir: string): Promise<void> {
  const stages = path.join(layout.root, 'stages');
  if (path.dirname(path.resolve(dir)) !== stages) return;
  const problem = await checkCheckpoint(dir, { full: true });
  if (problem === null) return;
  await removeStageDir(layout, path.basename(dir));
  throw new DamagedEntryError(dir, problem);
}

async function runMerge(t: MergeTask, ctx: TaskContext): Promise<TaskResult> {
  const layout = new CacheLayout(t.cacheRoot);
  if (await taskDone(t)) return { seconds: 0, alreadyDone: true };
  for (const dir of new Set(Object.values(t.inputs))) await checkRead(layout, dir);
  const parsed = parseRecipeText(t.recipe, '<point recipe>', process.cwd());
  const { recipe, problems } = resolveParsed(parsed, { modelDirs: t.modelDirs });
  if (!recipe) throw problems.length === 1 ? new UserError(problems[0]) : new UserErrors(problems);
  const stage = recipe.stages.find((s) => s.name === t.stageName);
  if (!stage) throw new Error(`internal: stage ${t.stageName} not in the point recipe`);
  const tmp = layout.newTmp(`merge-${t.key}`);
  await fs.mkdir(path.dirname(tmp), { recursive: true });
  const t0 = performance.now();
  try {
    const diagnostics = await mergeStage(stage, {
      inputs: t.inputs,
      outDir: tmp,
      seed: t.seed,
      allowCrimes: t.allowCrimes,
      kernels: await ctx.kernels(),
      onProgress: ctx.onProgress ? (p) => ctx.onProgress!(p.bytesTotal ? p.bytesDone / p.bytesTotal : p.tensorsDone / Math.max(1, p.tensorsTotal)) : undefined,
    });
    const seconds = (performance.now() - t0) / 1000;
    // Diagnostics first: a stage folder under its final name always has its diagnostics beside it.
    const diagFile: StageDiagFile = { key: t.key, engineVersion: ENGINE_VERSION, diagnostics, seconds };
    await writeJsonAtomic(layout.diagFile(t.key), diagFile);
    await fs.writeFile(path.join(tmp, STAGE_MARKER), JSON.stringify({ key: t.key, stage: t.stageName, engineVersion: ENGINE_VERSION }) + '\n');
    await publishDir(tmp, layout.stageDir(t.key));
    return { seconds, alreadyDone: false };
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    // Named by the folder it was to become, not by its temporary name.
    throw e instanceof DiskFullError ? new DiskFullError(layout.stageDir(t.key), e.neededBytes, e.freeBytes, e) : e;
  }
}

async function runEval(t: EvalTask, ctx: TaskContext): Promise<TaskResult> {
  const layout = new CacheLayout(t.cacheRoot);
  if (await taskDone(t)) return { seconds: 0, alreadyDone: true };
  await checkRead(layout, t.modelDir);
  const t0 = performance.now();
  const result = await runEvaluation(t.modelDir, t.eval, { gpus: ctx.gpus, port: ctx.port, logFile: t.logFile, pidDir: t.pidDir, workDir: t.workDir, log: ctx.log }, ctx.onTokens);
  const seconds = (performance.now() - t0) / 1000;
  const file: EvalFile = { key: t.key, result, seconds };
  await writeJsonAtomic(layout.evalFile(t.key), file);
  return { seconds, alreadyDone: false };
}

async function runPointDiag(t: PointDiagTask): Promise<TaskResult> {
  const layout = new CacheLayout(t.cacheRoot);
  if (await taskDone(t)) return { seconds: 0, alreadyDone: true };
  await checkRead(layout, t.finalDir);
  const t0 = performance.now();
  const diagnostics = await computeFinalVsParents(t.finalDir, t.base, t.parents);
  const seconds = (performance.now() - t0) / 1000;
  const file: PointDiagFile = { key: t.key, diagnostics, seconds };
  await writeJsonAtomic(layout.pointDiagFile(t.key), file);
  return { seconds, alreadyDone: false };
}

/**
 * Is the task's result in the cache, whole (so running it would do nothing)? What the workers, the
 * Slurm executor and `mergelab task` decide "already done" by. A JSON entry counts only when it
 * matches its checksum; a stage folder only when its files have the sizes its manifest records (a
 * cheap check: every reader checks it in full before reading it). A damaged stage folder is
 * removed here, so the merge that follows publishes its own and not the damaged one.
 */
export async function taskDone(t: Task): Promise<boolean> {
  const layout = new CacheLayout(t.cacheRoot);
  switch (t.type) {
    case 'merge': {
      if (!(await stageComplete(layout, t.key))) return false;
      if ((await checkStage(layout, t.key, false)) !== null) {
        await removeStageDir(layout, t.key);
        return false;
      }
      return (await readEntry(layout.diagFile(t.key))).ok;
    }
    case 'eval':
      return (await readEntry(layout.evalFile(t.key))).ok;
    case 'pointdiag':
      return (await readEntry(layout.pointDiagFile(t.key))).ok;
  }
}

export async function runTask(t: Task, ctx: TaskContext): Promise<TaskResult> {
  switch (t.type) {
    case 'merge':
      return runMerge(t, ctx);
    case 'eval':
      return runEval(t, ctx);
    case 'pointdiag':
      return runPointDiag(t);
  }
}
