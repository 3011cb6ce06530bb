import { z } from 'zod';
import { TokenizerBlock } from '../tokenizer/config.js';
import { nearest } from '../util/suggest.js';
import { knownKeysAt } from '../util/zodKeys.js';
import { chatTemplateProblem } from '../tokenizer/chat-template.js';

/**
 * mergekit's recipe format (one YAML document = one merge stage), as zod schemas. We accept the
 * fields mergekit 0.1.4 accepts for the features we implement and reject the others by name, so a
 * typo such as `paramters:` is an error instead of a silently ignored block.
 */

const SETTING_EXPECTED = 'expected a number, true/false, a string, a list of numbers (a gradient over layers) or a list of {filter, value} entries';

export const Scalar = z.union([z.number(), z.boolean(), z.string()]);
export const Gradient = z.array(z.number({ error: 'a gradient holds numbers only' })).min(1, { error: 'a gradient needs at least one number' });
export const ScalarOrGradient = z.union([Scalar, Gradient], { error: 'expected a number or a list of numbers (a gradient)' });
export const Conditional = z.strictObject(
  {
    filter: z.string().nullish(),
    value: ScalarOrGradient,
  },
  { error: 'expected {filter: SUBSTRING, value: NUMBER_OR_GRADIENT}' },
);
export const Setting = z.union([Scalar, Gradient, z.array(Conditional).min(1)], { error: SETTING_EXPECTED });
export const ParamBlock = z
  .record(z.string(), Setting)
  .nullish()
  .transform((v) => v ?? {});

export const ModelEntry = z.strictObject({
  model: z.string({ error: 'expected a model reference (a stage name, a --model-dir name or a folder)' }).min(1),
  parameters: ParamBlock,
});

export const LayerRange = z
  .tuple([z.number().int().nonnegative(), z.number().int().nonnegative()], { error: 'expected [first, end) as two integers' })
  .refine(([a, b]) => b > a, { error: 'layer_range [a, b) needs b > a' });

export const SliceSource = z.strictObject({
  model: z.string({ error: 'expected a model reference' }).min(1),
  layer_range: LayerRange,
  parameters: ParamBlock,
});

export const Slice = z.strictObject({
  sources: z.array(SliceSource).min(1, { error: 'a slice needs at least one source' }),
  parameters: ParamBlock,
});

/** mergekit dtype spellings -> safetensors dtype. */
export const DTYPES: Record<string, 'F32' | 'F16' | 'BF16'> = {
  float32: 'F32',
  fp32: 'F32',
  f32: 'F32',
  float16: 'F16',
  fp16: 'F16',
  f16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  bf16: 'BF16',
};
const Dtype = z
  .string()
  .refine((s) => s.toLowerCase() in DTYPES, { error: `expected one of ${Object.keys(DTYPES).join(', ')}` })
  .transform((s) => DTYPES[s.toLowerCase()])
  .nullish();

export const StageDoc = z.strictObject(
    {
      name: z.string().min(1).optional(),
      merge_method: z.string({ error: 'merge_method is required (e.g. task_arithmetic, ties, dare_ties, linear, slerp)' }).min(1),
      base_model: z.string().min(1).nullish(),
      models: z.array(ModelEntry).min(1, { error: 'models needs at least one entry' }).nullish(),
      slices: z.array(Slice).min(1, { error: 'slices needs at least one entry' }).nullish(),
      parameters: ParamBlock,
      dtype: Dtype,
      out_dtype: Dtype,
      // union | base | a model: the output vocabulary and how embeddings are permuted into it (src/tokenizer).
      tokenizer_source: z.union([z.string(), z.null()]).optional(),
      tokenizer: TokenizerBlock.nullish(),
      // A name, auto, or a Jinja template (src/tokenizer/chat-template.ts); the output's tokenizer_config.json takes it.
      chat_template: z
        .string()
        .superRefine((v, ctx) => {
          const problem = chatTemplateProblem(v);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .nullish(),
    },
    { error: 'a stage must be a YAML mapping' },
  );

/** Checks zod cannot run when another field already failed; done on the raw value so they are always reported. */
export function structureIssues(raw: unknown): SchemaIssue[] {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return [];
  const r = raw as Record<string, unknown>;
  const has = (k: string) => r[k] !== undefined && r[k] !== null;
  if (!has('models') && !has('slices')) return [{ path: [], message: 'a stage needs `models` or `slices`' }];
  if (has('models') && has('slices')) return [{ path: ['slices'], message: '`models` and `slices` cannot both be given (mergekit treats them as exclusive)' }];
  if (has('tokenizer_source') && has('tokenizer')) return [{ path: ['tokenizer'], message: '`tokenizer_source` and `tokenizer` cannot both be given (mergekit refuses both; put the source in tokenizer.source)' }];
  return [];
}

export type Scalar = z.infer<typeof Scalar>;
export type ScalarOrGradient = z.infer<typeof ScalarOrGradient>;
export type Conditional = z.infer<typeof Conditional>;
export type Setting = z.infer<typeof Setting>;
export type ParamBlock = z.output<typeof ParamBlock>;
export type StageDoc = z.output<typeof StageDoc>;
export type OutDtype = 'F32' | 'F16' | 'BF16';

export interface SchemaIssue {
  path: Array<string | number>;
  message: string;
  /** The position is the key's, not its value's (an unknown field). */
  atKey?: boolean;
  /** The known field nearest to an unknown one. */
  suggestion?: string;
}

/** Zod issues as positioned problems; an unknown field is answered with the nearest field `schema` knows there. */
export function describeIssues(issues: z.core.$ZodIssue[], schema: z.ZodType = StageDoc): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  for (const i of issues) {
    const p = i.path.filter((k): k is string | number => typeof k !== 'symbol');
    if (i.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, p);
      for (const k of i.keys) {
        const suggestion = nearest(k, known);
        out.push({ atKey: true, path: [...p, k], message: `unknown field '${k}'` + (p.length === 0 ? ' (stage fields: name, merge_method, base_model, models, slices, parameters, dtype, out_dtype, tokenizer_source, tokenizer, chat_template)' : ''), ...(suggestion ? { suggestion } : {}) });
      }
      continue;
    }
    out.push({ path: p, message: i.message });
  }
  return out;
}
