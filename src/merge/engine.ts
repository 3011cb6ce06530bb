import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fromF32, type FloatDType } from '../checkpoint/dtype.js';
import { findNonFinite, openCheckpoint, type Checkpoint } from '../checkpoint/reader.js';
import { CheckpointWriter } from '../checkpoint/writer.js';
import { prepareOutDir } from '../checkpoint/outdir.js';
import { tempSibling } from '../util/temp.js';
import { checkFreeSpace } from '../util/disk.js';
import { dtypeByteSize } from '../checkpoint/dtype.js';
import { allocShared, getKernels, isBackendName } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { getMethod, methodsReady } from '../methods/registry.js';
import type { MergeMethod } from '../methods/types.js';
import { loadRecipe, resolveParsed, stageLabel, type LoadResult, type ModelDirs, type Recipe, type ResolvedStage } from '../recipe/recipe.js';
import { parseRecipeText, readRecipeFile } from '../recipe/source.js';
import { UserError, UserErrors, isUserError } from '../util/errors.js';
import type { StageDiagnostics, TensorDiagnostics } from './diagnostics.js';
import { planStage, plannedOutputView, type HeaderView, type PlanOptions, type ShapeMismatch, type StagePlan } from './plan.js';
import { summarizeDiagnostics } from './summary.js';

/**
 * The merge engine: streams a stage tensor by tensor (read each input tensor, merge, write, drop),
 * so peak memory is a few float32 copies of the largest tensor, never a checkpoint. Multi-stage
 * recipes run dependencies first, intermediate outputs in hidden folders beside the output.
 */

export const ENGINE_VERSION = '0.1.0';
export const DIAGNOSTICS_FILE = 'mergelab_diagnostics.json';

export interface MergeProgress {
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface MergeStageOptions {
  /** Model reference (as written in the recipe) -> model folder. Needed for stage references; folders the recipe resolved are filled in. */
  inputs: Record<string, string>;
  outDir: string;
  seed: number;
  kernels: Kernels;
  outShardSize?: number;
  onProgress?: (p: MergeProgress) => void;
  /** Diagnostics of the stages run before this one, stored with this stage's in the output. */
  priorStages?: StageDiagnostics[];
  /** Recipe text to store as mergekit_config.yml instead of the stage's own document (the whole chain for a final stage). */
  recipeText?: string;
  /**
   * `kernels` belong to this merge alone, so the buffers they return for one tensor can be handed
   * back (`reuseBuffers`) once it is written: memory stays bounded by the largest tensor and no
   * buffer is allocated per tensor. Never set it when other work uses the same kernels concurrently.
   */
  ownsKernels?: boolean;
  /** What an existing `outDir` may be (see WriterOptions.replace; default 'mergelab'). */
  replace?: 'mergelab' | 'any';
  /** Merge models whose tensors differ in shape (mergekit's --allow-crimes; see PlanOptions). */
  allowCrimes?: boolean;
}

/** Contents of mergelab_diagnostics.json: every stage that produced the folder, in run order. */
export interface DiagnosticsFile {
  engineVersion: string;
  seed: number;
  backend: string;
  stages: StageDiagnostics[];
}

/** The stage's method, or the problem naming it at its line; a MERGELAB_METHODS module that fails to load throws its own error. */
async function locateMethod(stage: ResolvedStage): Promise<MergeMethod | string> {
  await methodsReady();
  try {
    return getMethod(stage.method);
  } catch (e) {
    if (isUserError(e)) return `${stage.doc.where(['merge_method'])}: ${stage.label ? stage.label + ': ' : ''}${e.message}`;
    throw e;
  }
}

function throwProblems(problems: string[], file?: string): never {
  throw problems.length === 1 ? new UserError(problems[0], { file }) : new UserErrors(problems, { file });
}

/** Open a stage's inputs; every folder that fails to open is reported, each naming the model. */
async function openInputs(stage: ResolvedStage, dirs: Record<string, string>, opened: Map<string, Checkpoint>, problems: string[]): Promise<Record<string, Checkpoint>> {
  const out: Record<string, Checkpoint> = {};
  for (const ref of Object.keys(stage.inputs)) {
    const dir = dirs[ref];
    if (dir === undefined) {
      problems.push(`${stage.doc.where([])}: ${stage.label ? stage.label + ': ' : ''}no folder given for model '${ref}'`);
      continue;
    }
    const key = path.resolve(dir);
    let c = opened.get(key);
    if (!c) {
      try {
        c = await openCheckpoint(key);
      } catch (e) {
        if (!isUserError(e)) throw e;
        problems.push(`${stage.label ? stage.label + ': ' : ''}model '${ref}': ${e.message}`);
        continue;
      }
      opened.set(key, c);
    }
    out[ref] = c;
  }
  return out;
}

/** The output replaces its folder when done: refuse a folder that holds (or is) one of the inputs. */
function checkOutDir(outDir: string, inputDirs: string[]): void {
  const out = path.resolve(outDir);
  for (const d of inputDirs) {
    const inp = path.resolve(d);
    if (inp === out || inp.startsWith(out + path.sep)) {
      throw new UserError(`--out ${outDir}: this folder ${inp === out ? 'is' : 'contains'} the input model folder ${inp}, which the merge would replace; choose another output folder`, { field: '--out' });
    }
  }
}

/** Merge one stage whose inputs are folders on disk. Throws UserError(s) before reading any tensor when the plan has problems. */
export async function mergeStage(stage: ResolvedStage, opts: MergeStageOptions): Promise<StageDiagnostics> {
  const method = await locateMethod(stage);
  if (typeof method === 'string') throwProblems([method], stage.file);
  // Folders the recipe resolved itself need not be passed; stage outputs must be.
  const inputs: Record<string, string> = {};
  for (const [ref, inp] of Object.entries(stage.inputs)) if (inp.kind === 'path') inputs[ref] = inp.path;
  Object.assign(inputs, opts.inputs);
  checkOutDir(opts.outDir, Object.values(inputs));
  opts = { ...opts, inputs };
  const opened = new Map<string, Checkpoint>();
  try {
    const problems: string[] = [];
    const readers = await openInputs(stage, opts.inputs, opened, problems);
    if (problems.length) throwProblems(problems, stage.file);
    const plan = planStage(stage, method, readers, { allowCrimes: opts.allowCrimes });
    if (plan.problems.length) throwProblems(plan.problems, stage.file);
    return await executePlan(plan, readers, opts);
  } finally {
    await Promise.all([...opened.values()].map((c) => c.close()));
  }
}

/** Bytes of tensor data a stage's output holds. */
function planBytes(plan: StagePlan): number {
  return plan.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1) * dtypeByteSize(t.dtype), 0);
}

/** The most float32 elements any one input tensor of the plan holds (the size of a reusable input buffer). */
function maxInputNumel(plan: StagePlan, readers: Record<string, Checkpoint>): number {
  let max = 0;
  for (const t of plan.tensors) {
    if (t.kind !== 'merge') continue;
    for (const s of [...(t.base ? [t.base] : []), ...t.models]) max = Math.max(max, readers[s.ref].info(s.tensor).numel);
  }
  return max;
}

/** Stream a checked plan to `opts.outDir` (atomically: nothing appears there unless it all succeeds). */
export async function executePlan(plan: StagePlan, readers: Record<string, Checkpoint>, opts: MergeStageOptions): Promise<StageDiagnostics> {
  const { stage, method } = plan;
  const warnings = [...plan.warnings];
  const tensorDiags: TensorDiagnostics[] = [];
  const tensorsTotal = plan.tensors.length;
  const bytesTotal = plan.tensors.reduce((a, t) => a + t.bytesIn, 0);
  let tensorsDone = 0;
  let bytesDone = 0;
  opts.onProgress?.({ tensorsDone, tensorsTotal, bytesDone, bytesTotal });

  const writer = await CheckpointWriter.create(opts.outDir, {
    dtype: plan.outDtype,
    shardSize: opts.outShardSize,
    metadata: { mergelab_stage: stage.name, mergelab_method: method.name, mergelab_seed: String(opts.seed), mergelab_backend: opts.kernels.name, mergelab_version: ENGINE_VERSION },
    replace: opts.replace ?? 'mergelab',
    expectedBytes: planBytes(plan),
  });
  // One reusable input buffer per input slot, in shared memory: no allocation per tensor, and the
  // typed kernels can split work over threads only when every array is shared.
  const slotSize = maxInputNumel(plan, readers);
  const slots: Float32Array[] = [];
  const slot = (i: number): Float32Array => (slots[i] ??= allocShared(slotSize));
  // Where the merged tensor is rounded to 16 bits: the memory of an input slot the result does not
  // live in (the inputs are spent once the result exists), shared so the kernels narrow on every thread.
  const halfOut = (result: Float32Array): Uint16Array => {
    const n = result.length;
    const free = slots.find((s) => s.buffer !== result.buffer && s.byteLength >= 2 * n) ?? allocShared(Math.ceil(n / 2));
    return new Uint16Array(free.buffer, free.byteOffset, n);
  };
  const reuse = opts.ownsKernels && opts.kernels.reuseBuffers ? () => opts.kernels.reuseBuffers!() : null;
  reuse?.();
  try {
    for (const t of plan.tensors) {
      if (t.kind === 'copy') {
        const raw = await readers[t.copyFrom!.ref].readRaw(t.copyFrom!.tensor);
        await writer.addRaw(t.name, raw.dtype, raw.shape, raw.bytes);
      } else {
        // One read per (model, tensor) even when a model is both base and a listed model.
        const cache = new Map<string, Float32Array>();
        const read = async (ref: string, tensor: string): Promise<Float32Array> => {
          const key = `${ref}\u0000${tensor}`;
          let data = cache.get(key);
          if (!data) {
            const info = readers[ref].info(tensor);
            const buf = slot(cache.size);
            if (info.dtype === 'BF16' || info.dtype === 'F16') {
              // Raw 16-bit data into the front of the slot, widened there by the kernels (on all threads).
              data = buf.subarray(0, info.numel);
              await readers[ref].readRaw(tensor, new Uint8Array(data.buffer, data.byteOffset, info.numel * 2));
              await opts.kernels.widen16(info.dtype, data);
            } else data = await readers[ref].readF32(tensor, buf);
            cache.set(key, data);
          }
          return data;
        };
        const base = t.base ? await read(t.base.ref, t.base.tensor) : null;
        const models: Array<{ ref: string; data: Float32Array; shape: number[] }> = [];
        for (const m of t.models) models.push({ ref: m.ref, data: await read(m.ref, m.tensor), shape: readers[m.ref].info(m.tensor).shape });
        if (!t.params) throw new Error(`internal: tensor ${t.name} was planned with parameter problems`);
        const res = await method.merge({
          tensor: t.name,
          shape: t.shape,
          base,
          baseRef: t.base?.ref ?? null,
          models,
          params: t.params,
          kernels: opts.kernels,
          seed: opts.seed,
          stage: stage.name,
          isEmbedding: t.isEmbedding,
        });
        for (const w of res.warnings) warnings.push(w);
        // A NaN or Inf in the base or a model makes that model's task-vector norm non-finite, so
        // finite diagnostics covering every model prove the inputs clean without another pass
        // over them; otherwise (or without diagnostics) scan, to name the tensor and model.
        const dg = res.diagnostics;
        const provenClean = dg !== null && Number.isFinite(dg.mergedDeltaNorm) && t.models.every((m) => Number.isFinite(dg.taskVectorNorm[m.ref]));
        if (!provenClean) {
          for (const [key, data] of cache) {
            const bad = findNonFinite(data);
            const [ref, tensor] = key.split('\u0000');
            if (bad > 0) warnings.push(`tensor ${tensor} of model '${ref}' has ${bad} non-finite value${bad === 1 ? '' : 's'} (NaN or Inf)`);
          }
          const bad = findNonFinite(res.data);
          if (bad > 0) warnings.push(`merged tensor ${t.name} has ${bad} non-finite value${bad === 1 ? '' : 's'} (NaN or Inf)`);
        }
        cache.clear();
        if (res.diagnostics) tensorDiags.push({ ...res.diagnostics, tensor: t.name, layer: t.layer });
        if (t.dtype === 'BF16' || t.dtype === 'F16') {
          const half = halfOut(res.data);
          await opts.kernels.narrow16(t.dtype, res.data, half);
          await writer.addRaw(t.name, t.dtype, res.shape, new Uint8Array(half.buffer, half.byteOffset, half.byteLength));
        } else if (t.dtype === plan.outDtype) await writer.addF32(t.name, res.shape, res.data);
        else await writer.addRaw(t.name, t.dtype, res.shape, fromF32(t.dtype as FloatDType, res.data));
        reuse?.();
      }
      tensorsDone++;
      bytesDone += t.bytesIn;
      opts.onProgress?.({ tensorsDone, tensorsTotal, bytesDone, bytesTotal });
    }
    const diagnostics: StageDiagnostics = {
      stage: stage.name,
      method: method.name,
      rescaleRule: plan.rescaleRule,
      seed: opts.seed,
      backend: opts.kernels.name,
      tensors: tensorDiags,
      totals: summarizeDiagnostics(tensorDiags),
      warnings,
    };
    const configDir = opts.inputs[plan.configFrom];
    await writer.finish({
      config: plan.config,
      tokenizerFrom: configDir,
      recipe: opts.recipeText ?? stage.text,
      extraFiles: { [DIAGNOSTICS_FILE]: JSON.stringify({ engineVersion: ENGINE_VERSION, seed: opts.seed, backend: opts.kernels.name, stages: [...(opts.priorStages ?? []), diagnostics] } satisfies DiagnosticsFile, null, 1) + '\n' },
    });
    return diagnostics;
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

export interface RunRecipeOptions {
  outDir: string;
  /** Seed of every random mask (default 0); recorded in the output. */
  seed?: number;
  /** Kernel backend name for getKernels ('auto', 'typed', 'tfjs', ...); ignored when `kernels` is given. */
  backend?: string;
  kernels?: Kernels;
  modelDirs?: ModelDirs;
  outShardSize?: number;
  /** Keep intermediate stage outputs in `<outDir>.stages/<name>` instead of deleting them. */
  keepIntermediate?: boolean;
  /** Replace `outDir` even when mergelab did not write it (its files are deleted); without it such a folder is refused before merging. */
  force?: boolean;
  /** Merge models whose tensors differ in shape (mergekit's --allow-crimes); without it they are problems. */
  allowCrimes?: boolean;
  cwd?: string;
  onStage?: (s: { stage: ResolvedStage; index: number; count: number; outDir: string }) => void;
  onProgress?: (stage: ResolvedStage, p: MergeProgress) => void;
}

export interface RunRecipeResult {
  recipe: Recipe;
  stages: StageDiagnostics[];
  outputDir: string;
  backend: string;
  seed: number;
  warnings: string[];
  /** Stage name -> folder, only with keepIntermediate. */
  intermediates: Record<string, string>;
}

async function resolveKernels(opts: RunRecipeOptions): Promise<{ kernels: Kernels; owned: boolean }> {
  if (opts.kernels) return { kernels: opts.kernels, owned: false };
  const name = opts.backend ?? 'auto';
  if (!isBackendName(name)) return { kernels: await getKernels(name as never), owned: true }; // throws the UserError listing backends
  return { kernels: await getKernels(name), owned: true };
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
}

/**
 * Check a loaded recipe against its inputs' headers, planning every stage (later stages against
 * the planned outputs of earlier ones). Returns every problem; reads no tensor data.
 */
export async function planRecipe(recipe: Recipe, opened: Map<string, Checkpoint>, opts: PlanOptions = {}): Promise<{ plans: Map<string, StagePlan>; problems: string[]; warnings: string[]; shapeMismatches: ShapeMismatch[] }> {
  const problems: string[] = [];
  const warnings: string[] = [...recipe.warnings];
  const plans = new Map<string, StagePlan>();
  const shapeMismatches: ShapeMismatch[] = [];
  for (const stage of recipe.stages) {
    const method = await locateMethod(stage);
    const dirs: Record<string, string> = {};
    for (const [ref, inp] of Object.entries(stage.inputs)) if (inp.kind === 'path') dirs[ref] = inp.path;
    const stageProblems: string[] = [];
    const views: Record<string, HeaderView> = { ...(await openInputs({ ...stage, inputs: Object.fromEntries(Object.entries(stage.inputs).filter(([, i]) => i.kind === 'path')) }, dirs, opened, stageProblems)) };
    let upstreamMissing = false;
    for (const [ref, inp] of Object.entries(stage.inputs)) {
      if (inp.kind !== 'stage') continue;
      const up = plans.get(inp.stage);
      if (up) views[ref] = plannedOutputView(up);
      else upstreamMissing = true;
    }
    problems.push(...stageProblems);
    if (typeof method === 'string') {
      problems.push(method);
      continue;
    }
    if (stageProblems.length || upstreamMissing) continue;
    // A model whose reference did not resolve (already reported) borrows another input's header,
    // so its parameters are still checked; header checks against it then pass trivially.
    const stand = views[stage.baseModel ?? ''] ?? Object.values(views)[0];
    for (const s of stage.slices) for (const src of s.sources) if (!views[src.ref] && stand) views[src.ref] = stand;
    if (!stand) continue;
    const plan = planStage(stage, method, views, opts);
    problems.push(...plan.problems);
    warnings.push(...plan.warnings);
    shapeMismatches.push(...plan.shapeMismatches);
    // Kept even with problems: later stages are still planned against it, so validate reports theirs too.
    plans.set(stage.name, plan);
  }
  return { plans, problems, warnings, shapeMismatches };
}

/** Run a (multi-stage) recipe file or text; the final stage's output lands at `opts.outDir`. */
export async function runRecipe(input: string | { text: string; file?: string; dir?: string }, opts: RunRecipeOptions): Promise<RunRecipeResult> {
  const recipe = await loadRecipe(input, { modelDirs: opts.modelDirs, cwd: opts.cwd });
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UserError(`seed ${seed} is invalid; expected a non-negative integer`, { field: '--seed' });
  const opened = new Map<string, Checkpoint>();
  const outDir = path.resolve(opts.outDir);
  const intermediates: Record<string, string> = {};
  const tempDirs: string[] = [];
  let kernels: { kernels: Kernels; owned: boolean } | null = null;
  try {
    const { plans, problems } = await planRecipe(recipe, opened, { allowCrimes: opts.allowCrimes });
    if (problems.length) throwProblems(problems, recipe.file);
    checkOutDir(outDir, recipe.stages.flatMap((s) => Object.values(s.inputs).flatMap((i) => (i.kind === 'path' ? [i.path] : []))));
    // Refused now, not after the merge: a folder mergelab did not write is the user's, and a merge
    // that cannot fit would fail after hours. Intermediate stages stay on disk until the end.
    await prepareOutDir(outDir, { force: opts.force });
    const stageBytes = [...plans.values()].map(planBytes);
    await checkFreeSpace(path.dirname(outDir), stageBytes.reduce((a, b) => a + b, 0), `the merge (${stageBytes.length} stage${stageBytes.length === 1 ? '' : 's'}, --out ${outDir})`);
    kernels = await resolveKernels(opts);
    const outputs = new Map<string, string>();
    const diags: StageDiagnostics[] = [];
    for (let i = 0; i < recipe.stages.length; i++) {
      const stage = recipe.stages[i];
      const isFinal = stage === recipe.final;
      let dir = outDir;
      if (!isFinal) {
        dir = opts.keepIntermediate
          ? path.join(`${outDir}.stages`, safeName(stage.name))
          : tempSibling(outDir, `stage-${safeName(stage.name)}`);
        if (!opts.keepIntermediate) tempDirs.push(dir);
      }
      const inputs: Record<string, string> = {};
      const readers: Record<string, Checkpoint> = {};
      for (const [ref, inp] of Object.entries(stage.inputs)) {
        inputs[ref] = inp.kind === 'path' ? inp.path : outputs.get(inp.stage)!;
        const key = path.resolve(inputs[ref]);
        let c = opened.get(key);
        if (!c) opened.set(key, (c = await openCheckpoint(key)));
        readers[ref] = c;
      }
      opts.onStage?.({ stage, index: i, count: recipe.stages.length, outDir: dir });
      const d = await executePlan(plans.get(stage.name)!, readers, {
        inputs,
        outDir: dir,
        seed,
        kernels: kernels.kernels,
        outShardSize: opts.outShardSize,
        onProgress: opts.onProgress ? (p) => opts.onProgress!(stage, p) : undefined,
        priorStages: isFinal ? diags : undefined,
        ownsKernels: kernels.owned,
        replace: opts.force ? 'any' : 'mergelab',
        // The final folder stores the whole chain: its own document names stages that no longer exist.
        recipeText: isFinal && recipe.stages.length > 1 ? recipe.stages.map((s) => s.text).join('---\n') : undefined,
      });
      diags.push(d);
      outputs.set(stage.name, dir);
      if (!isFinal && opts.keepIntermediate) intermediates[stage.name] = dir;
    }
    // Each stage's diagnostics carry its plan's warnings: listing the plan's too would say them twice.
    return { recipe, stages: diags, outputDir: outDir, backend: kernels.kernels.name, seed, warnings: [...recipe.warnings, ...diags.flatMap((d) => d.warnings)], intermediates };
  } finally {
    await Promise.all([...opened.values()].map((c) => c.close()));
    for (const d of tempDirs) await fs.rm(d, { recursive: true, force: true });
    if (kernels?.owned) await kernels.kernels.dispose();
  }
}

function stable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stable);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) o[k] = stable((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

/**
 * A stable JSON text of what determines a stage's output, for cache keys. Path inputs appear as
 * absolute paths; stage inputs as `{stage: NAME}` unless `inputKeys` maps the reference to
 * something better (for example the hash of the upstream stage's canonical form). The stage name
 * is included because it keys the random masks. The seed and backend are not: add them to the key.
 */
export function canonicalStage(stage: ResolvedStage, inputKeys: Record<string, string> = {}): string {
  const input = (ref: string) => inputKeys[ref] ?? (stage.inputs[ref]?.kind === 'path' ? { path: (stage.inputs[ref] as { path: string }).path } : { stage: ref });
  return JSON.stringify(
    stable({
      engine: ENGINE_VERSION,
      name: stage.name,
      method: stage.method,
      base_model: stage.baseModel === null ? null : { ref: stage.baseModel, input: input(stage.baseModel) },
      form: stage.fromModels ? 'models' : 'slices',
      slices: stage.slices.map((s) => ({
        parameters: s.parameters,
        sources: s.sources.map((src) => ({ ref: src.ref, input: input(src.ref), layer_range: src.layerRange, parameters: src.parameters, implicit: src.implicit })),
      })),
      parameters: stage.parameters,
      dtype: stage.dtype,
      out_dtype: stage.outDtype,
    }),
  );
}

export interface ValidateResult {
  problems: string[];
  warnings: string[];
  /** Stages in run order (empty when the recipe itself did not parse). */
  stages: string[];
}

/**
 * Everything that can be checked without reading tensor data: YAML and schema, references,
 * methods, parameters for every model and tensor, and shapes and tensor names from the
 * safetensors headers (a shape mismatch is a problem, a warning with allowCrimes, as in merge and run).
 */
export async function checkRecipe(input: string | { text: string; file?: string; dir?: string }, opts: { modelDirs?: ModelDirs; cwd?: string; allowCrimes?: boolean } = {}): Promise<ValidateResult> {
  let resolved: LoadResult;
  try {
    const parsed = typeof input === 'string' ? await readRecipeFile(input) : parseRecipeText(input.text, input.file ?? '<recipe>', input.dir ?? opts.cwd ?? process.cwd());
    resolved = resolveParsed(parsed, { ...opts, keepPartial: true });
  } catch (e) {
    if (e instanceof UserErrors) return { problems: e.problems, warnings: [], stages: [] };
    if (isUserError(e)) return { problems: [e.message], warnings: [], stages: [] };
    throw e;
  }
  const recipe = resolved.recipe;
  if (!recipe) return { problems: resolved.problems, warnings: [], stages: [] };
  const opened = new Map<string, Checkpoint>();
  try {
    const { problems, warnings } = await planRecipe(recipe, opened, { allowCrimes: opts.allowCrimes });
    return { problems: [...resolved.problems, ...problems], warnings, stages: recipe.stages.map((s) => s.name) };
  } finally {
    await Promise.all([...opened.values()].map((c) => c.close()));
  }
}

/** The problems `checkRecipe` finds (empty when the recipe can be merged). */
export async function validateRecipe(input: string | { text: string; file?: string; dir?: string }, opts: { modelDirs?: ModelDirs; cwd?: string } = {}): Promise<string[]> {
  return (await checkRecipe(input, opts)).problems;
}
