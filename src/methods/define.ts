/**
 * `defineMethod` turns a method's declaration (name, randomness, base and model-count rules,
 * parameter schemas, cross-parameter check, per-tensor merge) into the MergeMethod the registry
 * holds. Everything the planner, the engine and the sweep know about a method comes from here, so
 * a new method is one file plus one line in the registry.
 */
import { z } from 'zod';
import { maskKey } from '../kernels/rng.js';
import { UserError } from '../util/errors.js';
import { parseParams } from './parse.js';
import type {
  MergeInput,
  MergeMethod,
  MethodDefinition,
  ParamIssue,
  ParamSchema,
  ParsedParams,
  Prepared,
  PreparedMergeInput,
  RescaleRule,
  TensorMergeInput,
  TensorMergeOutput,
} from './types.js';

/** The zod a definition's schemas are written with, so a module outside the repository needs no install of its own. */
export { z };

/** Marks the objects defineMethod returns, across copies of this module (a plugin may load its own). */
export const METHOD_MARK = Symbol.for('mergelab.merge-method');

export function isMergeMethod(v: unknown): v is MergeMethod {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[METHOD_MARK] === true;
}

type EmptySchema = z.ZodObject<Record<never, never>>;

/** `(0, 1]`, `[0, inf)`: a number field's bounds as its JSON schema states them, null when it has none. */
function intervalOf(p: Record<string, unknown> | undefined): string | null {
  if (!p) return null;
  const lo = typeof p.exclusiveMinimum === 'number' ? `(${p.exclusiveMinimum}` : typeof p.minimum === 'number' ? `[${p.minimum}` : null;
  const hi = typeof p.exclusiveMaximum === 'number' ? `${p.exclusiveMaximum})` : typeof p.maximum === 'number' ? `${p.maximum}]` : null;
  if (lo === null && hi === null) return null;
  return `${lo ?? '(-inf'}, ${hi ?? 'inf)'}`;
}

interface FieldInfo {
  interval: string | null;
  about: string | null;
}

function fieldInfo(schema: ParamSchema): Record<string, FieldInfo> {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, Record<string, unknown>> };
  const out: Record<string, FieldInfo> = {};
  for (const [k, p] of Object.entries(json.properties ?? {})) {
    out[k] = { interval: intervalOf(p), about: typeof p.description === 'string' ? p.description : null };
  }
  return out;
}

/** Parse one parameter block; a failure becomes issues naming the parameter, never an exception. */
function parseBlock(schema: ParamSchema, info: Record<string, FieldInfo>, raw: Record<string, unknown>, model: number | null): { value: unknown; issues: ParamIssue[] } {
  const r = schema.safeParse(raw);
  if (r.success) return { value: r.data, issues: [] };
  const issues: ParamIssue[] = [];
  const seen = new Set<string>();
  for (const i of r.error.issues) {
    const key = i.path.length ? String(i.path[0]) : '';
    if (seen.has(key)) continue;
    seen.add(key);
    const value = raw[key];
    const interval = info[key]?.interval ?? null;
    if (!key) issues.push({ kind: 'rule', model, message: i.message });
    else if (value === undefined) issues.push({ kind: 'missing', key, model });
    else if ((i.code === 'too_small' || i.code === 'too_big') && typeof value === 'number' && interval) {
      issues.push({ kind: 'range', key, model, value, interval, about: info[key]?.about ?? null });
    } else issues.push({ kind: 'invalid', key, model, message: i.message });
  }
  return { value: undefined, issues };
}

export function defineMethod<B extends boolean, R extends boolean, G extends ParamSchema = EmptySchema, M extends ParamSchema = EmptySchema>(
  def: MethodDefinition<G, M, B, R>,
): MergeMethod {
  type GV = z.output<G>;
  type MV = z.output<M>;
  const globalInfo = fieldInfo(def.globalParams);
  const modelInfo = fieldInfo(def.modelParams);
  // Parameters this method parsed; `merge` takes no others, so a plan cannot hand one method another's.
  const issued = new WeakMap<ParsedParams, { global: GV; models: MV[] }>();

  const issue = (global: GV, models: MV[]): ParsedParams => {
    const p = { method: def.name } as ParsedParams;
    issued.set(p, { global, models });
    return p;
  };

  const rescaleRule = (global: Record<string, unknown>): RescaleRule => {
    const r = def.globalParams.safeParse(global);
    return r.success && def.rescaleRule ? def.rescaleRule(r.data) : 'none';
  };

  const merge = async (input: PreparedMergeInput): Promise<TensorMergeOutput> => {
    const parsed = issued.get(input.params);
    if (!parsed) throw new Error(`merge_method ${def.name}: parameters of tensor ${input.tensor} were not prepared by this method`);
    if (parsed.models.length !== input.models.length) {
      throw new Error(`merge_method ${def.name}: ${input.models.length} model tensors for ${parsed.models.length} parameter sets (tensor ${input.tensor})`);
    }
    if (def.needsBase && (input.base === null || input.baseRef === null)) {
      throw new UserError(`merge_method ${def.name} needs base_model, but tensor ${input.tensor} has no base tensor`, { field: 'base_model' });
    }
    const { seed, stage, tensor } = input;
    const full = {
      tensor,
      shape: input.shape,
      base: input.base,
      baseRef: input.baseRef,
      models: input.models.map((m, i) => ({ ref: m.ref, data: m.data, shape: m.shape, params: parsed.models[i] })),
      global: parsed.global,
      kernels: input.kernels,
      stage,
      isEmbedding: input.isEmbedding,
      ...(def.random ? { rngKey: (ref: string) => maskKey(seed, stage, ref, tensor) } : {}),
    };
    // The conditional parts of MergeInput (base present, rngKey) were established just above.
    return def.merge(full as unknown as MergeInput<GV, MV, B, R>);
  };

  const method: MergeMethod & { [METHOD_MARK]: true } = {
    [METHOD_MARK]: true,
    name: def.name,
    random: def.random,
    needsBase: def.needsBase,
    models: { min: def.models.min, max: def.models.max ?? Infinity },
    globalParams: def.globalParams,
    modelParams: def.modelParams,
    source: null,

    prepare(raw): Prepared {
      const g = parseBlock(def.globalParams, globalInfo, raw.global, null);
      const ms = raw.models.map((m, i) => parseBlock(def.modelParams, modelInfo, m.params, i));
      const issues = [...g.issues, ...ms.flatMap((m) => m.issues)];
      // Each model that parsed is checked even when another did not, so every problem is found at once.
      if (g.issues.length === 0 && def.check) {
        ms.forEach((m, i) => {
          if (m.issues.length) return;
          const message = def.check!({ global: g.value as GV, model: m.value as MV, ref: raw.models[i].ref });
          if (message !== null) issues.push({ kind: 'rule', model: i, message });
        });
      }
      if (issues.length) return { ok: false, issues };
      return { ok: true, params: issue(g.value as GV, ms.map((m) => m.value as MV)) };
    },

    rescaleRule,
    merge,

    async mergeTensor(input: TensorMergeInput): Promise<TensorMergeOutput> {
      const { tensor, stage } = input;
      const global = parseParams(def.globalParams, input.global, `merge_method ${def.name} parameters (tensor ${tensor})`) as GV;
      const models = input.models.map(
        (m) => parseParams(def.modelParams, m.params, `stage ${stage}: model ${JSON.stringify(m.ref)} parameters for tensor ${tensor}`) as MV,
      );
      input.models.forEach((m, i) => {
        const message = def.check?.({ global, model: models[i], ref: m.ref }) ?? null;
        if (message !== null) throw new UserError(`stage ${stage}: merge_method ${def.name}: model ${JSON.stringify(m.ref)}: ${message}`);
      });
      return merge({ ...input, models: input.models, params: issue(global, models) });
    },
  };
  return method;
}
