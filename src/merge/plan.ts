import type { DType, OutDType } from '../checkpoint/dtype.js';
import { isFloatDType } from '../checkpoint/dtype.js';
import { layerIndex, parseTensorName, withLayer } from '../checkpoint/names.js';
import { globalParamNames } from '../methods/registry.js';
import type { MergeMethod, ParamIssue, ParsedParams } from '../methods/types.js';
import { gradientT, lookupParam } from '../recipe/params.js';
import { stageLabel, type ResolvedStage, type StageSlice, type StageSource } from '../recipe/recipe.js';
import type { ParamBlock } from '../recipe/schema.js';
import type { FieldPath } from '../recipe/source.js';
import type { Problem, SourcePos } from '../util/errors.js';
import { nearest } from '../util/suggest.js';

/**
 * Everything about a stage that can be decided from safetensors headers alone: which output
 * tensors exist, which input tensor each model contributes, and every parameter resolved to a
 * number for that tensor. `validate` stops here; `merge` then streams the plan tensor by tensor.
 */

/** What the planner needs of an input model: an opened checkpoint, or a planned stage output. */
export interface HeaderView {
  config: Record<string, unknown> | null;
  tensorNames(): string[];
  has(name: string): boolean;
  info(name: string): { dtype: DType; shape: number[]; numel: number; byteLength?: number };
}

export interface PlannedSource {
  ref: string;
  /** Tensor name inside that model (differs from the output name when slices renumber layers). */
  tensor: string;
  params: Record<string, number>;
}

export interface PlannedTensor {
  /** Output tensor name. */
  name: string;
  /** Output decoder layer, null outside the layers. */
  layer: number | null;
  /** Expected output shape. */
  shape: number[];
  /** Dtype the output tensor is written in. */
  dtype: DType;
  isEmbedding: boolean;
  /** 'copy': a non-float tensor (position ids, masks) passed through from `copyFrom` byte for byte. */
  kind: 'merge' | 'copy';
  copyFrom: { ref: string; tensor: string } | null;
  base: { ref: string; tensor: string } | null;
  /** The `models` of TensorMergeInput: non-base models for needsBase methods, else every listed model. */
  models: PlannedSource[];
  /** Global parameters resolved for this tensor, as the recipe gives them. */
  global: Record<string, unknown>;
  /** The method's parse of `global` and each model's `params`; null for copies and for tensors with problems. */
  params: ParsedParams | null;
  /** Bytes read from the inputs for this tensor (progress and throughput). */
  bytesIn: number;
}

export interface StagePlan {
  stage: ResolvedStage;
  method: MergeMethod;
  tensors: PlannedTensor[];
  /** Dtype the writer converts to (tensors with another `dtype` are converted one by one). */
  outDtype: OutDType;
  /** Reference model whose config and tokenizer the output takes (base, else the first source). */
  configFrom: string;
  config: Record<string, unknown> | null;
  rescaleRule: string;
  problems: Problem[];
  warnings: string[];
  /** Models whose tensors differ in shape from the reference model's (merged only with allowCrimes). */
  shapeMismatches: ShapeMismatch[];
}

/** One model of a stage whose tensors differ in shape from the reference model's (the base, else the first model). */
export interface ShapeMismatch {
  stage: string;
  model: string;
  reference: string;
  tensors: Array<{ tensor: string; shape: number[]; referenceShape: number[] }>;
}

export interface PlanOptions {
  /**
   * Merge models whose tensors differ in shape from the reference (mergekit's --allow-crimes): the
   * method leaves them out of those tensors (embeddings: crops to the common block), with a
   * warning. Without it every such model is a problem.
   */
  allowCrimes?: boolean;
}

/** The model whose config and tokenizer a stage's output takes: the base, else the first source of the first slice. */
export function configFromRef(stage: ResolvedStage): string {
  return stage.baseModel ?? stage.slices[0].sources[0].ref;
}

/** Embeddings come before the layers, norms and heads after: it picks whose slice parameters apply. */
function isPreLayer(name: string): boolean {
  return parseTensorName(name).position === 'before';
}

function numLayers(view: HeaderView): number {
  let n = 0;
  for (const t of view.tensorNames()) {
    const l = layerIndex(t);
    if (l !== null && l + 1 > n) n = l + 1;
  }
  return n;
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Embeddings may differ in rows (vocabularies grow by added tokens); any other difference is another model. */
function shapesConflict(shape: readonly number[], ref: readonly number[], isEmbedding: boolean): boolean {
  if (sameShape(shape, ref)) return false;
  return !isEmbedding || shape.length !== ref.length || shape.some((d, i) => i > 0 && d !== ref[i]);
}

const LISTED_TENSORS = 8;

/** Problems are keyed by their text so one missing parameter is reported once, not once per tensor. */
class ProblemSet {
  private readonly map = new Map<string, { where: SourcePos; tensors: string[] }>();
  /** `tensor` is given where the problem may hold for some tensors only (filters, gradients), so the message says which. */
  add(where: SourcePos, msg: string, tensor: string | null): void {
    let e = this.map.get(msg);
    if (!e) this.map.set(msg, (e = { where, tensors: [] }));
    if (tensor !== null) e.tensors.push(tensor);
  }
  list(totalTensors: number): Problem[] {
    return [...this.map.entries()].map(([msg, { where, tensors }]) => {
      const scope = tensors.length === 0 || tensors.length >= totalTensors ? '' : tensors.length === 1 ? ` (tensor ${tensors[0]})` : ` (${tensors.length} tensors, e.g. ${tensors[0]})`;
      return { ...where, message: `${msg}${scope}` };
    });
  }
}

/** Which dtype the writer uses by default: the reference model's most common float dtype by bytes. */
function dominantFloat(view: HeaderView): OutDType {
  const bytes: Record<string, number> = {};
  for (const n of view.tensorNames()) {
    const i = view.info(n);
    if (!isFloatDType(i.dtype)) continue;
    bytes[i.dtype] = (bytes[i.dtype] ?? 0) + i.numel;
  }
  let best: string = 'F32';
  for (const [d, b] of Object.entries(bytes)) if (b > (bytes[best] ?? -1)) best = d;
  return best === 'F64' ? 'F32' : (best as OutDType);
}

/** Where a parameter problem sits in the recipe and what to say about it. */
function describeIssue(
  i: ParamIssue,
  method: MergeMethod,
  model: { label: string; src: StageSource; at: Record<string, FieldPath> } | null,
  global: Record<string, unknown>,
): { where: FieldPath; message: string } {
  const entry: FieldPath = model === null ? ['parameters'] : model.src.implicit ? ['base_model'] : model.src.field;
  const keyAt = (key: string): FieldPath => (model === null ? (global[key] !== undefined ? ['parameters', key] : ['parameters']) : (model.at[key] ?? entry));
  const who = model === null ? '' : `${model.label}: `;
  switch (i.kind) {
    case 'missing':
      return model === null
        ? { where: entry, message: `missing required global parameter '${i.key}' for merge_method ${method.name} (give it under the top-level parameters)` }
        : {
            where: entry,
            message: `${who}missing required parameter '${i.key}' for merge_method ${method.name} (set it in this model's parameters, the slice's, or the top-level parameters; there is no default)`,
          };
    case 'range':
      return { where: keyAt(i.key), message: `${who}${i.key} ${i.value} is outside ${i.interval}${i.about ? ` (${i.about})` : ''}` };
    case 'invalid':
      return { where: keyAt(i.key), message: `${who}parameter '${i.key}': ${i.message}` };
    case 'rule':
      return { where: entry, message: `${who}${i.message}` };
  }
}

interface TensorJob {
  name: string;
  layer: number | null;
  /** Position within the slice and the slice's layer count, for gradients. */
  layerInSlice: number | null;
  sliceLayers: number;
  slice: StageSlice;
  /** Per source: the tensor name inside that source. */
  sourceTensor: (src: StageSource) => string;
}

/**
 * Plan one stage against its inputs' headers. Never throws for a user mistake: every problem is
 * collected in `problems` so that validate can list them all.
 */
export function planStage(stage: ResolvedStage, method: MergeMethod, views: Record<string, HeaderView>, opts: PlanOptions = {}): StagePlan {
  const label = stageLabel(stage);
  const lp = label ? `${label}: ` : '';
  const doc = stage.doc;
  const problems = new ProblemSet();
  const warnings: string[] = [];
  const at = (p: FieldPath) => doc.pos(p);
  const where = (p: FieldPath) => doc.where(p);
  const tensors: PlannedTensor[] = [];
  const explicitDtype = stage.outDtype ?? stage.dtype;
  const empty: StagePlan = { stage, method, tensors, outDtype: explicitDtype ?? 'F32', configFrom: '', config: null, rescaleRule: 'none', problems: [], warnings, shapeMismatches: [] };
  /** Per model entry of the recipe (and reference): the tensors whose shapes conflict, reported once per model. */
  const mismatched = new Map<StageSource, { label: string; reference: string; tensors: ShapeMismatch['tensors'] }>();

  // Reported with the rest (parameters, counts), not alone: validate lists every problem at once.
  if (method.needsBase && !stage.baseModel) {
    problems.add(at(['merge_method']), `${lp}merge_method ${method.name} needs base_model (the model the task vectors are taken against)`, null);
  }
  for (const ref of Object.keys(stage.inputs)) {
    if (!views[ref]) return { ...empty, problems: [{ ...at([]), message: `${lp}internal: no header for input '${ref}'` }] };
  }

  const modelKeys = Object.keys(method.modelParams.shape);
  const globalKeys = Object.keys(method.globalParams.shape);
  const anyGlobal = globalParamNames();
  const isBase = (src: StageSource) => stage.baseModel !== null && src.ref === stage.baseModel;
  const apart = method.needsBase || method.optionalBase === 'reference';
  const contributing = (slice: StageSlice) => slice.sources.filter((s) => (apart ? !isBase(s) : !s.implicit));
  const refSource = (slice: StageSlice) => slice.sources.find(isBase) ?? slice.sources[0];

  // Model count bounds, per slice.
  for (const slice of stage.slices) {
    const n = contributing(slice).length;
    const { min: lo, max: hi } = method.models;
    if (n < lo || n > hi) {
      const want = lo === hi ? `exactly ${lo}` : hi === Infinity ? `at least ${lo}` : `${lo} to ${hi}`;
      const besides = apart && stage.baseModel !== null ? ' besides base_model' : '';
      problems.add(at(slice.field), `${lp}merge_method ${method.name} takes ${want} model${hi === 1 ? '' : 's'}${besides}, got ${n}`, null);
    }
  }

  // Parameters that nothing reads are a likely typo: say so, but mergekit accepts them, so do we.
  const checkUnused = (block: ParamBlock, field: FieldPath, topLevel: boolean) => {
    for (const k of Object.keys(block)) {
      if (modelKeys.includes(k)) continue;
      if (globalKeys.includes(k) || anyGlobal.has(k)) {
        if (!topLevel) warnings.push(`${where([...field, k])}: ${lp}'${k}' is a global parameter, read only from the top-level parameters; ignored here`);
        else if (!globalKeys.includes(k)) warnings.push(`${where([...field, k])}: ${lp}merge_method ${method.name} does not use parameter '${k}'; ignored`);
        continue;
      }
      const near = nearest(k, [...modelKeys, ...globalKeys]);
      warnings.push(`${where([...field, k])}: ${lp}merge_method ${method.name} has no parameter '${k}' (it reads ${[...modelKeys, ...globalKeys].join(', ')}); ignored${near ? ` (did you mean '${near}'?)` : ''}`);
    }
  };
  checkUnused(stage.parameters, ['parameters'], true);
  for (const slice of stage.slices) {
    if (!stage.fromModels) checkUnused(slice.parameters, [...slice.field, 'parameters'], false);
    for (const src of slice.sources) if (!src.implicit && !(apart && isBase(src))) checkUnused(src.parameters, [...src.field, 'parameters'], false);
  }

  const refView = views[refSource(stage.slices[0]).ref];
  const configFrom = refSource(stage.slices[0]).ref;

  // Enumerate output tensors.
  const jobs: TensorJob[] = [];
  if (stage.fromModels) {
    const slice = stage.slices[0];
    const L = numLayers(refView);
    for (const name of refView.tensorNames()) {
      const l = layerIndex(name);
      jobs.push({ name, layer: l, layerInSlice: l, sliceLayers: L, slice, sourceTensor: () => name });
    }
  } else {
    for (const slice of stage.slices) {
      for (const src of slice.sources) {
        const n = numLayers(views[src.ref]);
        if (src.layerRange && src.layerRange[1] > n) {
          problems.add(at([...src.field, 'layer_range']), `${lp}layer_range [${src.layerRange.join(', ')}] of model '${src.ref}' runs past its ${n} layers`, null);
        }
      }
    }
    const first = stage.slices[0];
    const last = stage.slices[stage.slices.length - 1];
    const nonLayer = refView.tensorNames().filter((n) => layerIndex(n) === null);
    for (const name of nonLayer.filter(isPreLayer)) jobs.push({ name, layer: null, layerInSlice: null, sliceLayers: 1, slice: first, sourceTensor: () => name });
    let offset = 0;
    for (const slice of stage.slices) {
      const ref = refSource(slice);
      const [a, b] = ref.layerRange!;
      const view = views[ref.ref];
      const byLayer = new Map<number, string[]>();
      for (const n of view.tensorNames()) {
        const l = layerIndex(n);
        if (l === null) continue;
        let list = byLayer.get(l);
        if (!list) byLayer.set(l, (list = []));
        list.push(n);
      }
      for (let idx = 0; idx < b - a; idx++) {
        for (const n of byLayer.get(a + idx) ?? []) {
          jobs.push({
            name: withLayer(n, offset + idx),
            layer: offset + idx,
            layerInSlice: idx,
            sliceLayers: b - a,
            slice,
            sourceTensor: (src) => withLayer(n, src.layerRange![0] + idx),
          });
        }
      }
      offset += b - a;
    }
    for (const name of nonLayer.filter((n) => !isPreLayer(n))) jobs.push({ name, layer: null, layerInSlice: null, sliceLayers: 1, slice: last, sourceTensor: () => name });
  }

  const outDtype: OutDType = explicitDtype ?? dominantFloat(refView);
  const paramWhere = (src: StageSource, slice: StageSlice, level: number, key: string): FieldPath =>
    level === 0 ? (src.implicit ? ['base_model'] : [...src.field, 'parameters', key]) : level === 1 ? [...slice.field, 'parameters', key] : ['parameters', key];

  for (const job of jobs) {
    const t = gradientT(job.layerInSlice, job.sliceLayers);
    const ref = refSource(job.slice);
    const refTensor = job.sourceTensor(ref);
    const refInfo = views[ref.ref].info(refTensor);
    const isEmb = parseTensorName(job.name).isEmbedding;
    let bytesIn = refInfo.byteLength ?? refInfo.numel * 2;

    if (!isFloatDType(refInfo.dtype)) {
      tensors.push({ name: job.name, layer: job.layer, shape: refInfo.shape, dtype: refInfo.dtype, isEmbedding: isEmb, kind: 'copy', copyFrom: { ref: ref.ref, tensor: refTensor }, base: null, models: [], global: {}, params: null, bytesIn });
      continue;
    }

    // Global parameters: top level only.
    const global: Record<string, unknown> = {};
    for (const k of globalKeys) {
      const f = lookupParam([stage.parameters], k, job.name, t);
      if (f !== undefined) global[k] = f.value;
    }

    const models: PlannedSource[] = [];
    /** Per planned model: its label, its recipe entry, and where each parameter's value was written. */
    const origins: Array<{ label: string; src: StageSource; at: Record<string, FieldPath>; unusable: Set<string> }> = [];
    let base: { ref: string; tensor: string } | null = null;
    if (stage.baseModel !== null) {
      const b = job.slice.sources.find(isBase)!;
      base = { ref: b.ref, tensor: job.sourceTensor(b) };
    }
    for (const src of contributing(job.slice)) {
      const tensor = job.sourceTensor(src);
      const view = views[src.ref];
      const modelLabel = `model '${src.ref}' (${src.implicit ? 'base_model' : src.field.map(String).join('.').replace(/\.(\d+)/g, '[$1]')})`;
      if (!view.has(tensor)) {
        problems.add(at(src.implicit ? ['base_model'] : [...src.field, 'model']), `${lp}${modelLabel} has no tensor '${tensor}' (the reference model '${ref.ref}' has it)`, null);
        continue;
      }
      const info = view.info(tensor);
      if (src !== ref) bytesIn += info.byteLength ?? info.numel * 2;
      if (shapesConflict(info.shape, refInfo.shape, isEmb)) {
        let m = mismatched.get(src);
        if (!m) mismatched.set(src, (m = { label: modelLabel, reference: ref.ref, tensors: [] }));
        if (!m.tensors.some((x) => x.tensor === tensor)) m.tensors.push({ tensor, shape: [...info.shape], referenceShape: [...refInfo.shape] });
      }
      const params: Record<string, number> = {};
      const origin = { label: modelLabel, src, at: {} as Record<string, FieldPath>, unusable: new Set<string>() };
      for (const k of modelKeys) {
        const f = lookupParam([src.parameters, job.slice.parameters, stage.parameters], k, job.name, t);
        if (f === undefined) continue;
        origin.at[k] = paramWhere(src, job.slice, f.level, k);
        if (typeof f.value !== 'number' || !Number.isFinite(f.value)) {
          problems.add(at(origin.at[k]), `${lp}${modelLabel}: parameter '${k}' must be a finite number, got ${JSON.stringify(f.value)}`, job.name);
          origin.unusable.add(k);
          continue;
        }
        params[k] = f.value;
      }
      models.push({ ref: src.ref, tensor, params });
      origins.push(origin);
    }

    const prepared = method.prepare({ global, models: models.map((m) => ({ ref: m.ref, params: m.params })) });
    if (!prepared.ok) {
      for (const i of prepared.issues) {
        const o = i.model === null ? null : origins[i.model];
        if (o && 'key' in i && o.unusable.has(i.key)) continue; // said above
        const p = describeIssue(i, method, o, global);
        problems.add(at(p.where), `${lp}${p.message}`, job.name);
      }
    }

    let shape = refInfo.shape;
    if (!base && isEmb && models.length > 0) {
      // linear-style methods crop embeddings to the common top-left block.
      const shapes = models.map((m) => views[m.ref].info(m.tensor).shape);
      if (shapes.every((s) => s.length === shape.length)) shape = shape.map((_, d) => Math.min(...shapes.map((s) => s[d])));
    }
    tensors.push({
      name: job.name,
      layer: job.layer,
      shape: [...shape],
      dtype: explicitDtype ?? (refInfo.dtype === 'F64' ? 'F32' : refInfo.dtype),
      isEmbedding: isEmb,
      kind: 'merge',
      copyFrom: null,
      base,
      models,
      global,
      params: prepared.ok ? prepared.params : null,
      bytesIn,
    });
  }

  let config = refView.config ? { ...refView.config } : null;
  if (config && !stage.fromModels) {
    const layers = stage.slices.reduce((a, s) => a + (refSource(s).layerRange![1] - refSource(s).layerRange![0]), 0);
    if ('num_hidden_layers' in config) config = { ...config, num_hidden_layers: layers };
  }
  const rescaleRule = method.rescaleRule(tensors.find((t) => t.kind === 'merge')?.global ?? {});

  const shapeMismatches: ShapeMismatch[] = [];
  for (const [src, m] of mismatched) {
    const n = m.tensors.length;
    const list = m.tensors.slice(0, LISTED_TENSORS).map((t) => `${t.tensor} ${shapeStr(t.shape)} vs ${shapeStr(t.referenceShape)}`).join(', ') + (n > LISTED_TENSORS ? `, and ${n - LISTED_TENSORS} more` : '');
    const msg = `${lp}${m.label}: ${n} tensor${n === 1 ? '' : 's'} differ${n === 1 ? 's' : ''} in shape from '${m.reference}' (${list})`;
    const entry: FieldPath = src.implicit ? ['base_model'] : [...src.field, 'model'];
    if (opts.allowCrimes) warnings.push(`${where(entry)}: ${msg}; merged anyway (--allow-crimes): the model is left out of ${n === 1 ? 'that tensor' : 'those tensors'}, embeddings are cropped to the common block`);
    else problems.add(at(entry), `${msg}; expected the shapes of '${m.reference}' (is it another architecture or width?); pass --allow-crimes to merge it anyway`, null);
    shapeMismatches.push({ stage: stage.name, model: src.ref, reference: m.reference, tensors: m.tensors });
  }

  return { stage, method, tensors, outDtype, configFrom, config, rescaleRule, problems: problems.list(jobs.length), warnings, shapeMismatches };
}

/** The header a stage's output will have, so later stages can be planned before anything runs. */
export function plannedOutputView(plan: StagePlan): HeaderView {
  const infos = new Map(plan.tensors.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, numel: t.shape.reduce((a, b) => a * b, 1) }]));
  return {
    config: plan.config,
    tensorNames: () => [...infos.keys()],
    has: (n) => infos.has(n),
    info: (n) => {
      const i = infos.get(n);
      if (!i) throw new Error(`planned output of stage ${plan.stage.name} has no tensor ${n}`);
      return { ...i, byteLength: i.numel * (i.dtype === 'F32' ? 4 : 2) };
    },
  };
}
