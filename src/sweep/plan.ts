import type { Checkpoint } from '../checkpoint/reader.js';
import { ENGINE_VERSION, canonicalStage, planRecipe } from '../merge/engine.js';
import { ENGINE_CODE } from '../merge/codeVersion.js';
import type { ShapeMismatch } from '../merge/plan.js';
import { getMethod, methodsReady } from '../methods/registry.js';
import { resolveParsed, type Recipe, type ResolvedStage } from '../recipe/recipe.js';
import { parseRecipeText } from '../recipe/source.js';
import { formatProblem, isUserError, problemsError, sortProblems, type Problem } from '../util/errors.js';
import { nearest } from '../util/suggest.js';
import type { AxisValue, EvalConfig, Experiment } from './experiment.js';
import { expandExperiment, filePosOf, pointId, type TemplatePoint } from './expand.js';
import { contentKey, type FolderHasher } from './hash.js';
import { backendKey } from '../eval/backends/config.js';

/**
 * The plan of a sweep: every point, every stage each one needs (deduplicated by content key), and
 * the keys under which stage outputs, evaluations and point diagnostics are cached.
 *
 * A stage's key hashes its canonical resolved recipe (which includes its name: the name keys the
 * random masks), its inputs' keys (a model folder's content hash, or the upstream stage's key), its
 * seed when the method draws random numbers, and a digest of the merge engine's sources (so an
 * upgrade never serves a merge made by older code). So the DARE stage shared by many second-stage
 * weights has one key and is merged once. An evaluation's key likewise carries the evaluator's.
 */

/**
 * What a stage's key takes from its method: whether it draws random numbers (only then does the
 * seed key the stage) and, for a method loaded from outside src/methods, the digest of its source.
 * An unknown name is reported by the header check, or by the merge itself when that check is off.
 */
function methodTraits(name: string): { random: boolean; source: string | null } {
  try {
    const m = getMethod(name);
    return { random: m.random, source: m.source };
  } catch (e) {
    if (isUserError(e)) return { random: false, source: null };
    throw e;
  }
}

/** Bump when what a point-diagnostics file holds changes. */
export const POINT_DIAGNOSTICS_VERSION = 1;

export type StageInput = { kind: 'model'; model: string; dir: string; hash: string } | { kind: 'stage'; key: string; name: string };

export interface StageNode {
  key: string;
  name: string;
  method: string;
  random: boolean;
  /** The seed the stage is merged with (0 for a deterministic stage: it is unused). */
  seed: number;
  /** The point recipe text this stage is taken from (the worker re-parses it). */
  recipe: string;
  /** Its models may differ in shape from the reference (the variant allows crimes). */
  allowCrimes: boolean;
  inputs: Record<string, StageInput>;
  /** Ids of the points that need this stage. */
  points: string[];
}

export interface PointNode {
  index: number;
  id: string;
  role: 'base' | 'parent' | 'merge';
  variant: string;
  axes: Record<string, AxisValue>;
  seed: number | null;
  recipe: string | null;
  /** Stage keys in run order; the last is the final model. Empty for references. */
  stages: string[];
  /** Folder of a reference model; null for merges (the final stage's cache folder). */
  modelDir: string | null;
  /** Stage key of a merge, content hash of a reference's folder. */
  modelKey: string;
  evalKey: string;
  /** Final-vs-original-parents diagnostics of a chained point; null otherwise. */
  pointDiag: { key: string; base: { name: string; dir: string }; parents: Array<{ name: string; dir: string }> } | null;
  /** Models merged although their tensors differ in shape (allow_crimes); empty otherwise. */
  shapeMismatches: ShapeMismatch[];
}

export interface Plan {
  experiment: Experiment;
  engineVersion: string;
  points: PointNode[];
  stages: Map<string, StageNode>;
  modelHashes: Record<string, string>;
  /** Name -> folder of every experiment model (the recipes' model references). */
  modelDirs: Record<string, string>;
  /** Said once per run, whatever the number of points they concern (models merged despite shape mismatches). */
  warnings: string[];
}

export interface PlanOptions {
  hasher: FolderHasher;
  /** Version string of the evaluator (part of evaluation keys). */
  evaluatorVersion: string;
  /** Check every recipe against the models' tensor headers (default true). */
  checkHeaders?: boolean;
  /** Problems found before planning; reported together with the recipes' (all at once). */
  prior?: PriorProblems;
}

/**
 * The key of one model's evaluation. Another backend than the built-in one adds `backendKey` (its
 * command or endpoint and the settings that can change a score), so scores of one server command
 * are never served for another; a built-in evaluation's key is made of what it always was.
 */
export function evalKeyOf(modelKey: string, cfg: EvalConfig, evaluatorVersion: string): string {
  const backend = backendKey(cfg.backend);
  return contentKey({ kind: 'eval', evaluator: evaluatorVersion, model: modelKey, suites: cfg.suites, limit: cfg.limit, batchSize: cfg.batchSize, samples: cfg.samples, ...(backend === 'builtin' ? {} : { backend }) });
}

/** What planning found before it: problems of the file that still leave it plannable (ExperimentDraft). */
export interface PriorProblems {
  problems: readonly Problem[];
  /** Models whose folders are missing: recipes naming them are checked without their headers. */
  unavailableModels: ReadonlySet<string>;
}

/**
 * A sweep's problems, each said once at its place in the experiment file, with the number of a
 * variant's points it is found in (a bad axis value is found in every point that uses it).
 */
class ProblemTally {
  private readonly byKey = new Map<string, { problem: Problem; variant: string | null; points: Set<number> }>();
  constructor(private readonly pointsOf: (variant: string) => number) {}
  /** `variant` and `point` (its index among the variant's points) say where the problem was found; null for the file's own. */
  add(problem: Problem, variant: string | null, point: number | null): void {
    const key = `${variant}\u0000${formatProblem(problem)}`;
    let e = this.byKey.get(key);
    if (!e) this.byKey.set(key, (e = { problem, variant, points: new Set() }));
    if (point !== null) e.points.add(point);
  }
  get size(): number {
    return this.byKey.size;
  }
  list(): Problem[] {
    return [...this.byKey.values()].map(({ problem, variant, points }) => (variant !== null && points.size ? { ...problem, points: { count: points.size, of: this.pointsOf(variant) } } : problem));
  }
}

interface CheckedPoint {
  tp: TemplatePoint;
  resolved: Recipe;
  /** Models its recipe merges although their tensors differ in shape (the variant's allow_crimes). */
  shapeMismatches: ShapeMismatch[];
}

/**
 * Check every point's recipe (schema, references, methods, parameters and, with checkHeaders,
 * shapes against the models' headers), each problem placed in the experiment file: a point's
 * recipe is parsed under a file name of its own, and problems in it are mapped through the
 * template's fills (`filePosOf`). Returns the points that are fine; `tally` gets the rest.
 */
async function checkPoints(exp: Experiment, opts: { checkHeaders?: boolean; unavailableModels?: ReadonlySet<string> }, tally: ProblemTally): Promise<CheckedPoint[]> {
  const modelDirs = Object.fromEntries(Object.values(exp.models).map((m) => [m.name, m.dir]));
  const dirToModel = new Map(Object.values(exp.models).map((m) => [m.dir, m.name]));
  const opened = new Map<string, Checkpoint>();
  /** Per recipe text and allow_crimes: what its header check found (each distinct recipe is checked once). */
  const headerChecks = new Map<string, { problems: Problem[]; shapeMismatches: ShapeMismatch[] }>();
  const checked: CheckedPoint[] = [];
  const pointIndex = new Map<string, number>();
  await methodsReady();
  try {
    for (const tp of expandExperiment(exp)) {
      const v = tp.variant;
      const index = pointIndex.get(v.name) ?? 0;
      pointIndex.set(v.name, index + 1);
      const label = `<recipe of ${v.field}>`;
      const context = v.field === '(document)' ? undefined : `variant ${v.name}`;
      // A problem in the point's recipe, at its place in the experiment file (or dropped, when it
      // lies in an unknown placeholder, whose own problem says it).
      const report = (p: Problem): void => {
        if (p.file !== label) {
          tally.add({ ...p, context: [context, p.context].filter(Boolean).join(', ') || undefined }, v.name, index);
          return;
        }
        const at = filePosOf(tp, p.line, p.col);
        if (at === null) return;
        tally.add({ ...p, ...at, context: [context, p.context].filter(Boolean).join(', ') || undefined }, v.name, index);
      };
      let r: ReturnType<typeof resolveParsed>;
      try {
        const parsed = parseRecipeText(tp.recipe, label, process.cwd());
        r = resolveParsed(parsed, { modelDirs, keepPartial: true, unavailable: opts.unavailableModels });
      } catch (e) {
        if (!isUserError(e)) throw e;
        for (const p of e.problems) report(p.file === undefined ? { ...p, file: label } : p);
        continue;
      }
      for (const p of r.problems) report(p);
      if (!r.recipe) continue;
      const resolved = r.recipe;
      // Model references must be the experiment's named models: a bare folder path would bypass hashing and resume.
      let bad = r.problems.length > 0;
      for (const st of resolved.stages) {
        for (const [ref, inp] of Object.entries(st.inputs)) {
          if (inp.kind !== 'path' || (dirToModel.has(inp.path) && ref in modelDirs)) continue;
          const src = st.slices.flatMap((sl) => sl.sources).find((x) => x.ref === ref && !x.implicit);
          report(st.doc.problem(src ? [...src.field, 'model'] : ['base_model'], `model '${ref}' is not one of the experiment's models (${Object.keys(modelDirs).join(', ')}); declare it under \`models:\` and write \${${ref}} or its name`, st.label, false, nearest(ref, Object.keys(modelDirs))));
          bad = true;
        }
      }
      let shapeMismatches: ShapeMismatch[] = [];
      if (opts.checkHeaders !== false) {
        const key = `${v.allowCrimes}\u0000${tp.recipe}`;
        let hc = headerChecks.get(key);
        if (!hc) headerChecks.set(key, (hc = await planRecipe(resolved, opened, { allowCrimes: v.allowCrimes })));
        for (const p of hc.problems) report(p);
        if (hc.problems.length) bad = true;
        shapeMismatches = hc.shapeMismatches;
      }
      if (!bad) checked.push({ tp, resolved, shapeMismatches });
    }
  } finally {
    await Promise.all([...opened.values()].map((c) => c.close()));
  }
  return checked;
}

function variantPointCounts(exp: Experiment): (variant: string) => number {
  const counts = new Map<string, number>();
  for (const tp of expandExperiment(exp)) counts.set(tp.variant.name, (counts.get(tp.variant.name) ?? 0) + 1);
  return (v) => counts.get(v) ?? 0;
}

/**
 * Every problem of an experiment's sweep, each once, in file order: the `prior` problems of the
 * file itself, then those of its recipes. Reads headers, never tensor data; computes no key.
 */
export async function checkPlan(exp: Experiment, opts: { checkHeaders?: boolean; prior?: PriorProblems } = {}): Promise<{ problems: Problem[]; points: number }> {
  const tally = new ProblemTally(variantPointCounts(exp));
  for (const p of opts.prior?.problems ?? []) tally.add(p, null, null);
  const checked = await checkPoints(exp, { checkHeaders: opts.checkHeaders, unavailableModels: opts.prior?.unavailableModels }, tally);
  const points = checked.reduce((a, c) => a + (c.resolved.stages.some((st) => methodTraits(st.method).random) ? c.tp.variant.seeds.length : 1), 0);
  return { problems: sortProblems(tally.list()), points };
}

export async function buildPlan(exp: Experiment, opts: PlanOptions): Promise<Plan> {
  const modelDirs = Object.fromEntries(Object.values(exp.models).map((m) => [m.name, m.dir]));
  const modelHashes: Record<string, string> = {};
  const hashOf = async (name: string): Promise<string> => (modelHashes[name] ??= await opts.hasher.hash(modelDirs[name]));

  const tally = new ProblemTally(variantPointCounts(exp));
  for (const p of opts.prior?.problems ?? []) tally.add(p, null, null);
  const checked = await checkPoints(exp, { checkHeaders: opts.checkHeaders, unavailableModels: opts.prior?.unavailableModels }, tally);
  if (tally.size) throw problemsError(sortProblems(tally.list()), exp.file);

  const stages = new Map<string, StageNode>();
  const mergePoints: PointNode[] = [];
  const seen = new Set<string>();
  const usedAsBase = new Set<string>();
  const usedAsInput = new Set<string>();
  const warnings = new Set<string>();
  for (const { tp, resolved, shapeMismatches } of checked) {
    const v = tp.variant;
    for (const m of shapeMismatches) {
      const list = m.tensors.slice(0, 4).map((t) => `${t.tensor} [${t.shape.join(', ')}] vs [${t.referenceShape.join(', ')}]`).join(', ') + (m.tensors.length > 4 ? `, and ${m.tensors.length - 4} more` : '');
      warnings.add(`variant ${v.name} (allow_crimes): stage ${m.stage}: model '${m.model}': ${m.tensors.length} tensor${m.tensors.length === 1 ? '' : 's'} differ in shape from '${m.reference}' (${list}); merged anyway, marked on its points' records (shapeMismatches)`);
    }
    for (const st of resolved.stages) {
      if (st.baseModel && st.inputs[st.baseModel]?.kind === 'path') usedAsBase.add(st.baseModel);
      for (const [ref, inp] of Object.entries(st.inputs)) if (inp.kind === 'path') usedAsInput.add(ref);
    }
    const random = resolved.stages.some((s) => methodTraits(s.method).random);
    for (const seed of random ? v.seeds : [null]) {
      const id = pointId(v.name, tp.axes, seed);
      if (seen.has(id)) continue;
      seen.add(id);
      const keys = new Map<string, string>();
      const stageKeys: string[] = [];
      for (const st of resolved.stages) {
        const key = await stageKey(st, seed, keys, hashOf);
        keys.set(st.name, key);
        stageKeys.push(key);
        let node = stages.get(key);
        if (!node) {
          const inputs: Record<string, StageInput> = {};
          for (const [ref, inp] of Object.entries(st.inputs)) {
            inputs[ref] = inp.kind === 'path' ? { kind: 'model', model: ref, dir: inp.path, hash: await hashOf(ref) } : { kind: 'stage', key: keys.get(inp.stage)!, name: inp.stage };
          }
          const { random: stageRandom } = methodTraits(st.method);
          node = { key, name: st.name, method: st.method, random: stageRandom, seed: stageRandom ? (seed ?? 0) : 0, recipe: tp.recipe, allowCrimes: v.allowCrimes, inputs, points: [] };
          stages.set(key, node);
        }
        // One variant allowing it is enough: the stage's output is the same either way.
        node.allowCrimes ||= v.allowCrimes;
        node.points.push(id);
      }
      const finalKey = stageKeys[stageKeys.length - 1];
      let pointDiag: PointNode['pointDiag'] = null;
      const finalBase = resolved.final.baseModel;
      // The base the chain's deltas are measured from: the final stage's, else any stage's that is a model.
      const baseName: string | null =
        finalBase && resolved.final.inputs[finalBase]?.kind === 'path' ? finalBase : (resolved.stages.map((s) => s.baseModel).find((b): b is string => !!b && b in modelDirs) ?? null);
      if (resolved.stages.length > 1 && baseName) {
        const parents = [...new Set(resolved.stages.flatMap((s) => Object.entries(s.inputs).filter(([r, i]) => i.kind === 'path' && r !== baseName).map(([r]) => r)))];
        pointDiag = {
          key: contentKey({ kind: 'point-diagnostics', v: POINT_DIAGNOSTICS_VERSION, final: finalKey, base: await hashOf(baseName), parents: await Promise.all(parents.map(async (p) => [p, await hashOf(p)])) }),
          base: { name: baseName, dir: modelDirs[baseName] },
          parents: parents.map((p) => ({ name: p, dir: modelDirs[p] })),
        };
      }
      mergePoints.push({
        index: 0,
        id,
        role: 'merge',
        variant: v.name,
        axes: tp.axes,
        seed,
        recipe: tp.recipe,
        stages: stageKeys,
        modelDir: null,
        modelKey: finalKey,
        evalKey: evalKeyOf(finalKey, exp.eval, opts.evaluatorVersion),
        pointDiag,
        shapeMismatches,
      });
    }
  }

  // References: every base and parent used by a recipe, plus the baselines; bases first.
  const refNames = Object.keys(exp.models).filter((m) => usedAsInput.has(m) || exp.baselines.includes(m));
  refNames.sort((a, b) => Number(usedAsBase.has(b)) - Number(usedAsBase.has(a)));
  const refPoints: PointNode[] = [];
  for (const name of refNames) {
    const h = await hashOf(name);
    refPoints.push({
      index: 0,
      id: `ref ${name}`,
      role: usedAsBase.has(name) ? 'base' : 'parent',
      variant: name,
      axes: {},
      seed: null,
      recipe: null,
      stages: [],
      modelDir: modelDirs[name],
      modelKey: h,
      evalKey: evalKeyOf(`model:${h}`, exp.eval, opts.evaluatorVersion),
      pointDiag: null,
      shapeMismatches: [],
    });
  }
  const points = [...refPoints, ...mergePoints].map((p, i) => ({ ...p, index: i }));
  await opts.hasher.save();
  return { experiment: exp, engineVersion: ENGINE_VERSION, points, stages, modelHashes, modelDirs, warnings: [...warnings] };
}

async function stageKey(st: ResolvedStage, seed: number | null, upstream: Map<string, string>, hashOf: (name: string) => Promise<string>): Promise<string> {
  const inputKeys: Record<string, string> = {};
  for (const [ref, inp] of Object.entries(st.inputs)) inputKeys[ref] = inp.kind === 'path' ? `model:${await hashOf(ref)}` : `stage:${upstream.get(inp.stage)}`;
  const { random, source } = methodTraits(st.method);
  // ENGINE_CODE covers the built-in methods; a plugin's own file keys the stages it merges.
  const methodCode = source === null ? {} : { methodCode: source };
  return contentKey({ kind: 'stage', engine: ENGINE_CODE, ...methodCode, stage: canonicalStage(st, inputKeys), seed: random ? (seed ?? 0) : null });
}
