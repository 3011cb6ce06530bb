import { promises as fs } from 'node:fs';
import path from 'node:path';
import { dtypeByteSize, fromF32, type FloatDType } from '../checkpoint/dtype.js';
import { findNonFinite, openCheckpoint, type Checkpoint } from '../checkpoint/reader.js';
import { CheckpointWriter } from '../checkpoint/writer.js';
import { prepareOutDir } from '../checkpoint/outdir.js';
import { tempSibling } from '../util/temp.js';
import { checkFreeSpace } from '../util/disk.js';
import { allocShared, getKernels, isBackendName } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { getMethod, listMethods, methodsReady } from '../methods/registry.js';
import type { MergeMethod } from '../methods/types.js';
import { loadRecipe, resolveParsed, stageLabel, type LoadResult, type ModelDirs, type Recipe, type ResolvedStage } from '../recipe/recipe.js';
import { parseRecipeText, readRecipeFile } from '../recipe/source.js';
import { UserError, isUserError, problemsError, type Problem } from '../util/errors.js';
import { nearest } from '../util/suggest.js';
import { readStageTokenizers, tokenizeEmbeddings } from './tokenizer-engine.js';
import { isReplacedTokenizerFile, planStageTokenizer, type StageTokenizer } from './tokenizer-stage.js';
import type { StageDiagnostics, TensorDiagnostics } from './diagnostics.js';
import { planStage, plannedOutputView, type HeaderView, type ShapeMismatch, type StagePlan } from './plan.js';
import { summarizeDiagnostics } from './summary.js';
import { architectureProblem } from './architecture.js';
import { modelCard } from './card.js';
import { chatTemplateFiles } from './chat-template-stage.js';
import { TOKENIZER_CONFIG } from '../tokenizer/files.js';

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
  /** The stage's planned tokenizer (tokenizer_source / tokenizer:), when it has one. */
  tokenizer?: StageTokenizer | null;
  /** Copy the base's (or first model's) tokenizer files when the stage builds none (default true; mergekit --no-copy-tokenizer). */
  copyTokenizer?: boolean;
  /**
   * mergekit's --allow-crimes: merge models whose configs name different architectures, whose
   * tensors differ in shape from the reference (left out of those tensors, embeddings cropped), or
   * whose vocabularies differ with no tokenizer setting. Without it each of these is a problem.
   */
  allowCrimes?: boolean;
  /** What an existing `outDir` may be (see WriterOptions.replace; default 'mergelab'). */
  replace?: 'mergelab' | 'any';
  /** More files for the output folder (the model card). */
  extraFiles?: Record<string, string>;
  /** Stop between two tensors once aborted (the temporary output is removed, nothing is published). */
  signal?: AbortSignal;
}

/** Contents of mergelab_diagnostics.json: every stage that produced the folder, in run order. */
export interface DiagnosticsFile {
  engineVersion: string;
  seed: number;
  backend: string;
  stages: StageDiagnostics[];
}

/** The stage's method, or the problem naming it at its line; a MERGELAB_METHODS module that fails to load throws its own error. */
async function locateMethod(stage: ResolvedStage): Promise<{ method: MergeMethod; problem?: undefined } | { method?: undefined; problem: Problem }> {
  await methodsReady();
  try {
    return { method: getMethod(stage.method) };
  } catch (e) {
    if (isUserError(e)) return { problem: stage.doc.problem(['merge_method'], e.message, stage.label, false, nearest(stage.method, listMethods())) };
    throw e;
  }
}

function throwProblems(problems: Problem[], file?: string): never {
  throw problemsError(problems, file);
}

/** Where a stage first names model `ref` (its base_model or its first models/sources entry). */
function modelPos(stage: ResolvedStage, ref: string): ReturnType<ResolvedStage['doc']['pos']> {
  if (stage.baseModel === ref) return stage.doc.pos(['base_model']);
  for (const s of stage.slices) for (const src of s.sources) if (src.ref === ref && !src.implicit) return stage.doc.pos([...src.field, 'model']);
  return stage.doc.pos([]);
}

/** Open a stage's inputs; every folder that fails to open is reported, each naming the model. */
async function openInputs(stage: ResolvedStage, dirs: Record<string, string>, opened: Map<string, Checkpoint>, problems: Problem[], unopenable: Set<string> = new Set()): Promise<Record<string, Checkpoint>> {
  const out: Record<string, Checkpoint> = {};
  for (const ref of Object.keys(stage.inputs)) {
    const dir = dirs[ref];
    if (dir === undefined) {
      problems.push(stage.doc.problem([], `no folder given for model '${ref}'`, stage.label));
      continue;
    }
    const key = path.resolve(dir);
    // A folder that failed to open for an earlier stage was reported there.
    if (unopenable.has(key)) continue;
    let c = opened.get(key);
    if (!c) {
      try {
        c = await openCheckpoint(key);
      } catch (e) {
        if (!isUserError(e)) throw e;
        problems.push({ ...modelPos(stage, ref), message: `${stage.label ? stage.label + ': ' : ''}model '${ref}': ${e.message}` });
        unopenable.add(key);
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
  const { method, problem } = await locateMethod(stage);
  if (problem) throwProblems([problem], stage.file);
  // Folders the recipe resolved itself need not be passed; stage outputs must be.
  const inputs: Record<string, string> = {};
  for (const [ref, inp] of Object.entries(stage.inputs)) if (inp.kind === 'path') inputs[ref] = inp.path;
  Object.assign(inputs, opts.inputs);
  checkOutDir(opts.outDir, Object.values(inputs));
  opts = { ...opts, inputs };
  const opened = new Map<string, Checkpoint>();
  try {
    const problems: Problem[] = [];
    const readers = await openInputs(stage, opts.inputs, opened, problems);
    if (problems.length) throwProblems(problems, stage.file);
    const plan = planStage(stage, method, readers, { allowCrimes: opts.allowCrimes });
    if (plan.problems.length) throwProblems(plan.problems, stage.file);
    const crimes = opts.allowCrimes ? null : architectureProblem(stage, readers);
    if (crimes) problems.push(crimes);
    const tok = planStageTokenizer(stage, plan, await readStageTokenizers(opts.inputs, problems, stage.tokenizer !== null), readers, { strict: !opts.allowCrimes });
    problems.push(...tok.problems);
    if (problems.length) throwProblems(problems, stage.file);
    plan.warnings.push(...tok.warnings);
    return await executePlan(plan, readers, { ...opts, tokenizer: tok.tokenizer });
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
      opts.signal?.throwIfAborted();
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
        let base = t.base ? await read(t.base.ref, t.base.tensor) : null;
        let models: Array<{ ref: string; data: Float32Array; shape: number[] }> = [];
        for (const m of t.models) models.push({ ref: m.ref, data: await read(m.ref, m.tensor), shape: readers[m.ref].info(m.tensor).shape });
        if (opts.tokenizer) ({ base, models } = tokenizeEmbeddings(opts.tokenizer, t, base, models, readers));
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
    // mergekit writes the tokenizer it built whatever --copy-tokenizer says; the flag only stops the copy.
    const tokenizerFrom = opts.tokenizer || opts.copyTokenizer !== false ? configDir : undefined;
    const chatTemplate =
      stage.chatTemplate === null
        ? {}
        : await chatTemplateFiles(stage.chatTemplate, {
            stage: stage.name,
            built: opts.tokenizer?.files[TOKENIZER_CONFIG] ?? null,
            copiedFrom: opts.tokenizer ? null : (tokenizerFrom ?? null),
            inputs: Object.keys(stage.inputs).map((ref) => opts.inputs[ref]).filter((d): d is string => d !== undefined),
            warnings,
          });
    await writer.finish({
      config: plan.config,
      tokenizerFrom,
      skipTokenizerFile: opts.tokenizer ? isReplacedTokenizerFile : undefined,
      recipe: opts.recipeText ?? stage.text,
      extraFiles: {
        ...(opts.extraFiles ?? {}),
        ...(opts.tokenizer?.files ?? {}),
        ...chatTemplate,
        [DIAGNOSTICS_FILE]: JSON.stringify({ engineVersion: ENGINE_VERSION, seed: opts.seed, backend: opts.kernels.name, stages: [...(opts.priorStages ?? []), diagnostics] } satisfies DiagnosticsFile, null, 1) + '\n',
      },
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
  /** Threads of the typed kernels when this call creates them (mergekit -j). */
  threads?: number;
  /** See MergeStageOptions.copyTokenizer (default true). */
  copyTokenizer?: boolean;
  /** See MergeStageOptions.allowCrimes. */
  allowCrimes?: boolean;
  /** Replace `outDir` even when mergelab did not write it (its files are deleted); without it such a folder is refused before merging. */
  force?: boolean;
  /** Write README.md, a model card like mergekit's, into the output (mergekit --write-model-card). */
  modelCard?: boolean;
  cwd?: string;
  onStage?: (s: { stage: ResolvedStage; index: number; count: number; outDir: string }) => void;
  onProgress?: (stage: ResolvedStage, p: MergeProgress) => void;
  /** Stop between two tensors once aborted; temporary stage folders are removed. */
  signal?: AbortSignal;
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
  return { kernels: await getKernels(name, opts.threads ? { threads: opts.threads } : {}), owned: true };
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
}

/**
 * Check a loaded recipe against its inputs' headers, planning every stage (later stages against
 * the planned outputs of earlier ones). Returns every problem; reads no tensor data.
 */
export async function planRecipe(
  recipe: Recipe,
  opened: Map<string, Checkpoint>,
  opts: { allowCrimes?: boolean } = {},
): Promise<{ plans: Map<string, StagePlan>; problems: Problem[]; warnings: string[]; tokenizers: Map<string, StageTokenizer | null>; shapeMismatches: ShapeMismatch[] }> {
  const problems: Problem[] = [];
  const warnings: string[] = [...recipe.warnings];
  const plans = new Map<string, StagePlan>();
  const shapeMismatches: ShapeMismatch[] = [];
  const tokenizers = new Map<string, StageTokenizer | null>();
  // The tokenizer each planned stage's output will carry, for the stages that read it.
  const outTokenizers = new Map<string, Awaited<ReturnType<typeof readStageTokenizers>>[string]>();
  // What each stage's output will look like, for the stages that read it: its plan's, or, for a
  // stage that could not be planned (an unknown method), its reference input's header, so that
  // the stages after it are still checked.
  const outputs = new Map<string, HeaderView>();
  const unopenable = new Set<string>();
  for (const stage of recipe.stages) {
    const { method, problem } = await locateMethod(stage);
    const dirs: Record<string, string> = {};
    for (const [ref, inp] of Object.entries(stage.inputs)) if (inp.kind === 'path') dirs[ref] = inp.path;
    const stageProblems: Problem[] = [];
    const views: Record<string, HeaderView> = { ...(await openInputs({ ...stage, inputs: Object.fromEntries(Object.entries(stage.inputs).filter(([, i]) => i.kind === 'path')) }, dirs, opened, stageProblems, unopenable)) };
    for (const [ref, inp] of Object.entries(stage.inputs)) {
      const up = inp.kind === 'stage' ? outputs.get(inp.stage) : undefined;
      if (up) views[ref] = up;
    }
    problems.push(...stageProblems);
    // A model whose reference did not resolve or whose folder did not open (already reported)
    // borrows another input's header, so that its parameters and the later stages are still
    // checked; header checks against it then pass trivially.
    const stand = views[stage.baseModel ?? ''] ?? Object.values(views)[0];
    if (!stand) continue;
    for (const s of stage.slices) for (const src of s.sources) if (!views[src.ref]) views[src.ref] = stand;
    if (problem) {
      problems.push(problem);
      outputs.set(stage.name, stand);
      continue;
    }
    const plan = planStage(stage, method, views, { allowCrimes: opts.allowCrimes });
    problems.push(...plan.problems);
    shapeMismatches.push(...plan.shapeMismatches);
    const crimes = opts.allowCrimes ? null : architectureProblem(stage, views);
    if (crimes) problems.push(crimes);
    const toks = await readStageTokenizers(dirs, problems, stage.tokenizer !== null);
    for (const [ref, inp] of Object.entries(stage.inputs)) if (inp.kind === 'stage') toks[ref] = outTokenizers.get(inp.stage) ?? null;
    // Vocabularies that differ with no tokenizer setting are a crime like mismatched shapes: the same
    // problem in validate, merge and run, a warning only with allowCrimes.
    const tok = planStageTokenizer(stage, plan, toks, views, { strict: !opts.allowCrimes });
    problems.push(...tok.problems);
    // In the plan's own warnings, so the stage's diagnostics (mergelab_diagnostics.json) keep them too.
    plan.warnings.push(...tok.warnings);
    warnings.push(...plan.warnings);
    tokenizers.set(stage.name, tok.tokenizer);
    outTokenizers.set(stage.name, tok.output);
    // Kept even with problems: later stages are still planned against it, so validate reports theirs too.
    plans.set(stage.name, plan);
    outputs.set(stage.name, plannedOutputView(plan));
  }
  return { plans, problems, warnings, tokenizers, shapeMismatches };
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
    const { plans, problems, tokenizers } = await planRecipe(recipe, opened, { allowCrimes: opts.allowCrimes });
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
        tokenizer: tokenizers.get(stage.name) ?? null,
        copyTokenizer: opts.copyTokenizer,
        extraFiles: isFinal && opts.modelCard ? { 'README.md': modelCard(recipe, path.basename(outDir), await recipeSource(input, recipe)) } : undefined,
        signal: opts.signal,
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

/** The recipe as the user wrote it (the card quotes it), else its stages' documents joined. */
async function recipeSource(input: string | { text: string }, recipe: Recipe): Promise<string> {
  if (typeof input !== 'string') return input.text;
  try {
    return await fs.readFile(input, 'utf8');
  } catch {
    return recipe.stages.map((s) => s.text).join('---\n');
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
      // Only when set, so stages without one keep the keys they had.
      ...(stage.tokenizer ? { tokenizer: stage.tokenizer } : {}),
    }),
  );
}

export interface ValidateResult {
  problems: Problem[];
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
    if (isUserError(e)) return { problems: [...e.problems], warnings: [], stages: [] };
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
export async function validateRecipe(input: string | { text: string; file?: string; dir?: string }, opts: { modelDirs?: ModelDirs; cwd?: string } = {}): Promise<Problem[]> {
  return (await checkRecipe(input, opts)).problems;
}
