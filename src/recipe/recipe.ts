import { statSync } from 'node:fs';
import path from 'node:path';
import { UserError, formatProblem, problemsError, type Problem } from '../util/errors.js';
import { nearest } from '../util/suggest.js';
import { parseRecipeText, readRecipeFile, type FieldPath, type ParsedFile, type RecipeDocument } from './source.js';
import { tokenizerSetting, type TokenizerSetting } from '../tokenizer/config.js';
import { StageDoc, describeIssues, structureIssues, type OutDtype, type ParamBlock } from './schema.js';

/** Where a model reference leads: an earlier stage's output, or a folder on disk. */
export type InputRef = { kind: 'stage'; stage: string } | { kind: 'path'; path: string };

/** `--model-dir NAME=PATH` pairs. */
export type ModelDirs = Record<string, string>;

/** One input of a slice: a model, the layers taken from it, its own parameters. */
export interface StageSource {
  ref: string;
  /** [first, end) of the model's decoder layers; null = all of them (the `models:` form). */
  layerRange: [number, number] | null;
  parameters: ParamBlock;
  /** Where this entry is in the document (for messages). */
  field: FieldPath;
  /** True for a base model that the recipe did not list and we added (it takes no parameters). */
  implicit: boolean;
}

export interface StageSlice {
  sources: StageSource[];
  parameters: ParamBlock;
  field: FieldPath;
}

/**
 * One validated stage. The `models:` form becomes a single slice whose sources take every layer,
 * so the planner has one shape to handle; `fromModels` remembers which form was written.
 */
export interface ResolvedStage {
  /** 0-based position of the document in the file. */
  index: number;
  name: string;
  explicitName: boolean;
  /** How messages name the stage: 'stage 2 (name)', or '' for a file with a single unnamed stage. */
  label: string;
  file: string;
  method: string;
  baseModel: string | null;
  fromModels: boolean;
  slices: StageSlice[];
  parameters: ParamBlock;
  dtype: OutDtype | null;
  outDtype: OutDtype | null;
  /** As written. */
  tokenizerSource: string | null;
  /** `tokenizer_source` or the `tokenizer:` block, normalised; null when the recipe has neither. */
  tokenizer: TokenizerSetting | null;
  /** `chat_template` as written (a checked name, auto, or Jinja text); null when absent. */
  chatTemplate: string | null;
  /** Every model reference of the stage, resolved. */
  inputs: Record<string, InputRef>;
  /** Names of the stages whose outputs this stage reads. */
  dependsOn: string[];
  /** The document's YAML text, stored beside the output as mergekit_config.yml. */
  text: string;
  /** Source positions, for messages about fields. */
  doc: RecipeDocument;
}

export interface Recipe {
  file: string;
  /** Stages to run, dependencies first; the last is the final stage (the file's last document). */
  stages: ResolvedStage[];
  final: ResolvedStage;
  /** Non-fatal remarks (a stage nothing uses, ...). */
  warnings: string[];
}

export function makeStageLabel(s: { index: number; name: string; explicitName: boolean }, multi: boolean): string {
  if (s.explicitName) return `stage ${s.index + 1} (${s.name})`;
  return multi ? `stage ${s.index + 1}` : '';
}

export function stageLabel(s: { label: string }): string {
  return s.label;
}

/** `stage 2 (x): msg`, or `msg` alone for a single-stage file. */
export function withLabel(label: string, msg: string): string {
  return label ? `${label}: ${msg}` : msg;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Parse `NAME=PATH` flags; a bad one is a UserError naming it. */
export function parseModelDirFlags(flags: readonly string[] | undefined): ModelDirs {
  const out: ModelDirs = {};
  for (const f of flags ?? []) {
    const eq = f.indexOf('=');
    if (eq <= 0 || eq === f.length - 1) throw new UserError(`--model-dir ${JSON.stringify(f)}: expected NAME=PATH (for example --model-dir mistralai/Mistral-7B-v0.1=/models/mistral)`, { field: '--model-dir' });
    out[f.slice(0, eq)] = f.slice(eq + 1);
  }
  return out;
}

export interface LoadOptions {
  modelDirs?: ModelDirs;
  /** Second place relative model paths are looked for (after the recipe's folder). Default: process.cwd(). */
  cwd?: string;
  /**
   * Return the recipe even when some model references did not resolve (validate uses it to go on
   * checking parameters). Off by default: then `recipe` is null whenever there are problems.
   */
  keepPartial?: boolean;
  /**
   * Model names whose folders are known to be missing and already reported (a sweep's experiment
   * names them): references to them stay unresolved without a second problem, and (with
   * keepPartial) the rest of the recipe is still checked.
   */
  unavailable?: ReadonlySet<string>;
}

export interface LoadResult {
  /** Null when there are problems, except with `keepPartial` when only model references failed to resolve. */
  recipe: Recipe | null;
  problems: Problem[];
}

/**
 * Validate every document, resolve model references and order the stages, collecting every
 * problem rather than stopping at the first. Nothing here reads tensor data.
 */
export function resolveParsed(parsed: ParsedFile, opts: LoadOptions = {}): LoadResult {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const cwd = opts.cwd ?? process.cwd();
  const modelDirs = opts.modelDirs ?? {};
  const multi = parsed.docs.length > 1;

  // Pass 1: schema of each document, and the stage names.
  const docs: Array<{ d: RecipeDocument; v: StageDoc; name: string; explicitName: boolean }> = [];
  for (const d of parsed.docs) {
    const raw = d.value;
    const r = StageDoc.safeParse(raw);
    const label = multi ? `stage ${d.index + 1}` : undefined;
    const issues = [...(r.success ? [] : describeIssues(r.error.issues)), ...structureIssues(raw)];
    if (issues.length || !r.success) {
      for (const i of issues) problems.push(d.problem(i.path, i.message, label, i.atKey === true, i.suggestion));
      continue;
    }
    docs.push({ d, v: r.data, name: r.data.name ?? `stage${d.index + 1}`, explicitName: r.data.name !== undefined });
  }
  const byName = new Map<string, (typeof docs)[number]>();
  for (const x of docs) {
    if (!x.explicitName) continue;
    const prev = byName.get(x.name);
    if (prev) problems.push(x.d.problem(['name'], `stage name '${x.name}' is already used by stage ${prev.d.index + 1}; stage names must be unique`, `stage ${x.d.index + 1}`));
    else byName.set(x.name, x);
  }

  // Pass 2: model references and the slice structure.
  const stages: ResolvedStage[] = [];
  let unavailableRefs = 0;
  for (const { d, v, name, explicitName } of docs) {
    const label = makeStageLabel({ index: d.index, name, explicitName }, multi);
    const slices: StageSlice[] = v.models
      ? [{ sources: v.models.map((m, i) => ({ ref: m.model, layerRange: null, parameters: m.parameters, field: ['models', i], implicit: false })), parameters: {}, field: ['models'] }]
      : v.slices!.map((s, si) => ({
          sources: s.sources.map((src, j) => ({ ref: src.model, layerRange: src.layer_range as [number, number], parameters: src.parameters, field: ['slices', si, 'sources', j], implicit: false })),
          parameters: s.parameters,
          field: ['slices', si],
        }));
    const base = v.base_model ?? null;
    if (base !== null) {
      // The base takes no parameters and joins the inputs when not listed (spec section 1).
      for (const s of slices) {
        const listed = s.sources.find((x) => x.ref === base);
        if (listed) {
          if (Object.keys(listed.parameters).length > 0 && !v.slices) {
            warnings.push(formatProblem(d.problem([...listed.field, 'parameters'], `the base model '${base}' takes no parameters; these are ignored`, label)));
          }
          continue;
        }
        const range = s.sources[0]?.layerRange ?? null;
        s.sources.unshift({ ref: base, layerRange: range, parameters: {}, field: ['base_model'], implicit: true });
      }
    }
    if (!v.models) {
      for (const s of slices) {
        const len = (r: [number, number] | null) => (r ? r[1] - r[0] : 0);
        const n0 = len(s.sources[0].layerRange);
        for (const src of s.sources) {
          if (len(src.layerRange) !== n0) {
            problems.push(d.problem([...src.field, 'layer_range'], `spans ${len(src.layerRange)} layers but the slice's first source spans ${n0}; every source of a slice must span the same number of layers`, label));
          }
        }
      }
    }

    const inputs: Record<string, InputRef> = {};
    const dependsOn = new Set<string>();
    for (const s of slices) {
      for (const src of s.sources) {
        if (src.ref in inputs) continue;
        const field: FieldPath = src.implicit ? ['base_model'] : [...src.field, 'model'];
        const stage = byName.get(src.ref);
        if (stage) {
          if (stage.d === d) {
            problems.push(d.problem(field, `stage '${name}' uses its own output '${src.ref}' as a model (a cycle)`, label));
            continue;
          }
          inputs[src.ref] = { kind: 'stage', stage: src.ref };
          dependsOn.add(src.ref);
          continue;
        }
        if (opts.unavailable?.has(src.ref)) {
          unavailableRefs++;
          continue;
        }
        if (src.ref in modelDirs) {
          const p = path.resolve(cwd, modelDirs[src.ref]);
          // Reported, then left unresolved: the rest of the recipe is still checked (validate keeps going).
          if (!isDir(p)) problems.push(d.problem(field, `--model-dir ${src.ref}=${modelDirs[src.ref]}: ${p} is not a folder`, label));
          else inputs[src.ref] = { kind: 'path', path: p };
          continue;
        }
        const candidates = [path.resolve(parsed.dir, src.ref), path.resolve(cwd, src.ref)];
        const found = candidates.find(isDir);
        if (found) {
          inputs[src.ref] = { kind: 'path', path: found };
          continue;
        }
        const names = [...byName.keys()];
        problems.push(
          d.problem(
            field,
            `model '${src.ref}' is neither a stage name${names.length ? ` (stages: ${names.join(', ')})` : ''} nor a local folder (looked in ${[...new Set(candidates)].join(' and ')}); pass --model-dir ${src.ref}=PATH (models cannot be downloaded)`,
            label,
            false,
            nearest(src.ref, [...names.filter((n) => n !== name), ...Object.keys(modelDirs)]),
          ),
        );
      }
    }

    stages.push({
      index: d.index,
      name,
      explicitName,
      label,
      file: parsed.file,
      method: v.merge_method,
      baseModel: base,
      fromModels: !!v.models,
      slices,
      parameters: v.parameters,
      dtype: v.dtype ?? null,
      outDtype: v.out_dtype ?? null,
      tokenizerSource: v.tokenizer_source ?? null,
      tokenizer: tokenizerSetting(v.tokenizer_source ?? null, v.tokenizer ?? null),
      chatTemplate: v.chat_template ?? null,
      inputs,
      dependsOn: [...dependsOn],
      text: d.text,
      doc: d,
    });
  }
  // Unresolved references still leave a usable structure: validate plans it further to report more.
  if (stages.length !== parsed.docs.length) return { recipe: null, problems };
  const refProblems = problems.length;

  // Pass 3: order. The final stage is the last document; run what it needs, dependencies first.
  const final = stages[stages.length - 1];
  const byStage = new Map(stages.map((s) => [s.name, s]));
  const order: ResolvedStage[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: ResolvedStage, trail: string[]): boolean => {
    const st = state.get(s.name);
    if (st === 'done') return true;
    if (st === 'visiting') {
      const cycle = [...trail.slice(trail.indexOf(s.name)), s.name];
      problems.push(s.doc.problem([], `stages form a cycle: ${cycle.join(' -> ')} (each uses the next one's output as a model)`, stageLabel(s)));
      return false;
    }
    state.set(s.name, 'visiting');
    for (const dep of s.dependsOn) if (!visit(byStage.get(dep)!, [...trail, s.name])) return false;
    state.set(s.name, 'done');
    order.push(s);
    return true;
  };
  visit(final, []);
  // A stage the final stage does not need would silently not be merged (a typo in a model name, or a
  // stage naming one defined after it): an error, after checking it for cycles.
  const cycles = problems.length;
  for (const s of stages) {
    if (state.get(s.name) === 'done') continue;
    if (problems.length > cycles) break;
    const before = order.length;
    visit(s, []);
    order.splice(before);
  }
  // Cycles stop here; an unused stage does not keep validate from planning the others.
  const blocking = problems.length;
  if (problems.length === cycles) {
    for (const s of stages) {
      if (order.includes(s) || state.get(s.name) !== 'done') continue;
      problems.push(
        s.doc.problem([], `this stage is not used by the final stage (the last document, '${final.name}'), so it would never be merged; expected every stage to feed the final one (name it as a model of a later stage, or delete it)`, stageLabel(s)),
      );
    }
  }
  if (blocking > refProblems || ((problems.length || unavailableRefs) && !opts.keepPartial)) return { recipe: null, problems };
  if (order[order.length - 1] !== final) {
    // Unreachable: the final stage is visited first and pushed last among its own dependencies.
    throw new Error('internal: final stage not last in order');
  }
  return { recipe: { file: parsed.file, stages: order, final, warnings }, problems };
}

/** Load and resolve a recipe from a file, or from text (`{text, file?, dir?}`); throws UserErrors listing every problem. */
export async function loadRecipe(input: string | { text: string; file?: string; dir?: string }, opts: LoadOptions = {}): Promise<Recipe> {
  const parsed = typeof input === 'string' ? await readRecipeFile(input) : parseRecipeText(input.text, input.file ?? '<recipe>', input.dir ?? opts.cwd ?? process.cwd());
  const { recipe, problems } = resolveParsed(parsed, opts);
  if (!recipe || problems.length) throw problemsError(problems, parsed.file);
  return recipe;
}
