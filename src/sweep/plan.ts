import type { Checkpoint } from '../checkpoint/reader.js';
import { ENGINE_VERSION, canonicalStage, planRecipe } from '../merge/engine.js';
import { ENGINE_CODE } from '../merge/codeVersion.js';
import type { ShapeMismatch } from '../merge/plan.js';
import { getMethod, methodsReady } from '../methods/registry.js';
import { resolveParsed, type ResolvedStage } from '../recipe/recipe.js';
import { parseRecipeText } from '../recipe/source.js';
import { UserError, UserErrors, isUserError } from '../util/errors.js';
import type { AxisValue, EvalConfig, Experiment, Variant } from './experiment.js';
import { expandExperiment, pointId } from './expand.js';
import { contentKey, type FolderHasher } from './hash.js';

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
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Recipe messages name `LABEL:line:col` of the filled-in recipe; point them at the experiment file instead. */
function relocate(msg: string, label: string, v: Variant): string {
  return msg.replace(new RegExp(`${escapeRe(label)}:(\\d+):(\\d+)`, 'g'), (_m, l: string, c: string) => v.template.where(Number(l), Number(c))).replaceAll(label, `${v.template.where(1, 1)}`);
}

export function evalKeyOf(modelKey: string, cfg: EvalConfig, evaluatorVersion: string): string {
  return contentKey({ kind: 'eval', evaluator: evaluatorVersion, model: modelKey, suites: cfg.suites, limit: cfg.limit, batchSize: cfg.batchSize, samples: cfg.samples });
}

export async function buildPlan(exp: Experiment, opts: PlanOptions): Promise<Plan> {
  const modelDirs = Object.fromEntries(Object.values(exp.models).map((m) => [m.name, m.dir]));
  const modelHashes: Record<string, string> = {};
  const hashOf = async (name: string): Promise<string> => (modelHashes[name] ??= await opts.hasher.hash(modelDirs[name]));
  const dirToModel = new Map(Object.values(exp.models).map((m) => [m.dir, m.name]));

  const problems: string[] = [];
  const stages = new Map<string, StageNode>();
  const mergePoints: PointNode[] = [];
  const seen = new Set<string>();
  const usedAsBase = new Set<string>();
  const usedAsInput = new Set<string>();
  const opened = new Map<string, Checkpoint>();
  /** Recipe text -> what its header check found (each distinct recipe is checked once). */
  const checkedRecipes = new Map<string, ShapeMismatch[]>();
  const warnings = new Set<string>();
  /** A header problem shared by many points (the recipe differs only in a weight) is said once, listing them. */
  const headerProblems = new Map<string, string[]>();
  await methodsReady();

  try {
    for (const tp of expandExperiment(exp)) {
      const v = tp.variant;
      const label = `\u0000recipe:${v.name}\u0000`;
      let resolved;
      try {
        const parsed = parseRecipeText(tp.recipe, label, process.cwd());
        const r = resolveParsed(parsed, { modelDirs });
        if (!r.recipe) {
          for (const p of r.problems) problems.push(`${relocate(p, label, v)} (variant ${v.name}, point ${pointId(v.name, tp.axes, null)})`);
          continue;
        }
        resolved = r.recipe;
      } catch (e) {
        if (!isUserError(e)) throw e;
        const list = e instanceof UserErrors ? e.problems : [e.message];
        for (const p of list) problems.push(`${relocate(p, label, v)} (variant ${v.name})`);
        continue;
      }
      // Model references must be the experiment's named models: a bare folder path would bypass hashing and resume.
      let bad = false;
      for (const st of resolved.stages) {
        for (const [ref, inp] of Object.entries(st.inputs)) {
          if (inp.kind !== 'path') continue;
          if (!dirToModel.has(inp.path) || !(ref in modelDirs)) {
            problems.push(`${relocate(st.doc.where([]), label, v)}: variant ${v.name}: model '${ref}' is not one of the experiment's models (${Object.keys(modelDirs).join(', ')}); declare it under \`models:\` and write \${${ref}} or its name`);
            bad = true;
          }
        }
      }
      if (bad) continue;
      if (opts.checkHeaders !== false && !checkedRecipes.has(tp.recipe)) {
        const { problems: ps, shapeMismatches } = await planRecipe(resolved, opened, { allowCrimes: v.allowCrimes });
        checkedRecipes.set(tp.recipe, ps.length ? [] : shapeMismatches);
        for (const p of ps) {
          const msg = `${relocate(p, label, v)} (variant ${v.name}`;
          if (!headerProblems.has(msg)) headerProblems.set(msg, []);
          headerProblems.get(msg)!.push(pointId(v.name, tp.axes, null));
        }
        if (ps.length) continue;
        for (const m of shapeMismatches) {
          const list = m.tensors.slice(0, 4).map((t) => `${t.tensor} [${t.shape.join(', ')}] vs [${t.referenceShape.join(', ')}]`).join(', ') + (m.tensors.length > 4 ? `, and ${m.tensors.length - 4} more` : '');
          warnings.add(`variant ${v.name} (allow_crimes): stage ${m.stage}: model '${m.model}': ${m.tensors.length} tensor${m.tensors.length === 1 ? '' : 's'} differ in shape from '${m.reference}' (${list}); merged anyway, marked on its points' records (shapeMismatches)`);
        }
      }
      const shapeMismatches = checkedRecipes.get(tp.recipe) ?? [];
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
  } finally {
    await Promise.all([...opened.values()].map((c) => c.close()));
  }
  for (const [msg, ids] of headerProblems) {
    const shown = ids.length > 3 ? `${ids.slice(0, 3).join(', ')} and ${ids.length - 3} more` : ids.join(', ');
    problems.push(`${msg}, point${ids.length === 1 ? '' : 's'} ${shown})`);
  }
  if (problems.length) throw problems.length === 1 ? new UserError(problems[0], { file: exp.file }) : new UserErrors(problems, { file: exp.file });

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
