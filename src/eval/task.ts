/**
 * An eval task is data: `evals/NAME.yaml` (what to ask, how to extract, how to score) next to a
 * JSONL dataset. This module validates both and names the file, line and field of any mistake.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { UserError, UserErrors } from '../util/errors.js';
import { compileRegex } from './regex.js';
import { templateFields } from './template.js';
import { kwargsProblem } from './ifeval/registry.js';

const regexString = z.string().superRefine((s, ctx) => {
  try {
    compileRegex(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `not a valid regex: ${(e as Error).message}` });
  }
});

const filterStep = z.discriminatedUnion('function', [
  z.object({
    function: z.literal('regex'),
    pattern: regexString,
    /** Which match to keep: 0 the first, -1 the last (lm-eval's group_select). */
    group_select: z.number().int().default(0),
    fallback: z.string().default('[invalid]'),
  }).strict(),
  z.object({ function: z.literal('take_first') }).strict(),
  z.object({ function: z.literal('strip') }).strict(),
  z.object({ function: z.literal('lowercase') }).strict(),
]);
export type FilterStep = z.infer<typeof filterStep>;

const filterPipeline = z.object({ name: z.string().regex(/^[a-z0-9_]+$/, 'lower-case letters, digits and _'), steps: z.array(filterStep).min(1) }).strict();
export type FilterPipeline = z.infer<typeof filterPipeline>;

const generation = z.object({
  max_new_tokens: z.number().int().positive().max(4096),
  /** Output is cut at the first of these (generation itself stops at <eos> or the limit). */
  stop: z.array(z.string().min(1)).default([]),
}).strict();

const exactMatch = z.object({
  metric: z.literal('exact_match'),
  ignore_case: z.boolean().default(false),
  ignore_punctuation: z.boolean().default(false),
  regexes_to_ignore: z.array(regexString).default([]),
}).strict();
export type ExactMatchSpec = z.infer<typeof exactMatch>;

/**
 * The request as chat turns, for backends that talk to a chat endpoint (the openai backend's
 * /v1/chat/completions, where the server's chat template renders them); `prompt` stays what the
 * built-in runner and plain completions get. Like lm-eval's --apply_chat_template, per suite.
 */
const chatTurns = z.object({ system: z.string().min(1).optional(), user: z.string().min(1) }).strict();

const common = {
  task: z.string().regex(/^[a-z0-9_-]+$/, 'lower-case letters, digits, - and _'),
  description: z.string().optional(),
  dataset: z.string().min(1),
  id_field: z.string().min(1),
  limit: z.number().int().positive().optional(),
};

const generateTask = z.object({
  ...common,
  type: z.literal('generate_until'),
  prompt: z.string().min(1),
  target: z.string().min(1),
  generation,
  chat: chatTurns.optional(),
  filters: z.array(filterPipeline).min(1),
  metrics: z.array(exactMatch).min(1),
}).strict();

const ifevalTask = z.object({
  ...common,
  type: z.literal('ifeval'),
  prompt: z.string().min(1),
  generation,
  chat: chatTurns.optional(),
  metrics: z.array(z.enum(['prompt_level_strict', 'prompt_level_loose', 'inst_level_strict', 'inst_level_loose'])).min(1),
}).strict();

const perplexityTask = z.object({
  ...common,
  type: z.literal('loglikelihood_rolling'),
  text_field: z.string().min(1),
  metrics: z.array(z.enum(['nll_per_token', 'perplexity', 'bits_per_char'])).min(1),
}).strict();

export const taskSpecSchema = z.discriminatedUnion('type', [generateTask, ifevalTask, perplexityTask]);
export type TaskSpec = z.infer<typeof taskSpecSchema>;
export type GenerateTaskSpec = z.infer<typeof generateTask>;
export type IfevalTaskSpec = z.infer<typeof ifevalTask>;
export type PerplexityTaskSpec = z.infer<typeof perplexityTask>;

export type Row = Record<string, unknown>;
export interface LoadedTask { spec: TaskSpec; yamlPath: string; datasetPath: string; rows: Row[] }

function zodProblems(err: z.ZodError, file: string): string[] {
  return err.issues.map((i) => `${file}: field "${i.path.join('.') || '(root)'}": ${i.message}`);
}

/** Parses and validates a task description (no dataset I/O). */
export function parseTaskSpec(text: string, file: string): TaskSpec {
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid YAML: ${(e as Error).message}`, { file });
  }
  const res = taskSpecSchema.safeParse(raw);
  if (!res.success) throw new UserErrors(zodProblems(res.error, file), { file });
  return res.data;
}

/** Fields every row must carry for this task. */
function requiredFields(spec: TaskSpec): string[] {
  const f = new Set<string>([spec.id_field]);
  if (spec.type === 'generate_until') for (const k of [...templateFields(spec.prompt), ...templateFields(spec.target)]) f.add(k);
  if (spec.type === 'ifeval') for (const k of [...templateFields(spec.prompt), 'instruction_id_list', 'kwargs']) f.add(k);
  if (spec.type !== 'loglikelihood_rolling' && spec.chat) for (const k of [...templateFields(spec.chat.user), ...templateFields(spec.chat.system ?? '')]) f.add(k);
  if (spec.type === 'loglikelihood_rolling') f.add(spec.text_field);
  return [...f];
}

export function parseDataset(text: string, spec: TaskSpec, file: string): Row[] {
  const rows: Row[] = [];
  const problems: string[] = [];
  const need = requiredFields(spec);
  const ids = new Set<string>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '' || problems.length >= 20) return;
    const where = `${file}:${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      problems.push(`${where}: not valid JSON: ${(e as Error).message}`);
      return;
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      problems.push(`${where}: expected a JSON object`);
      return;
    }
    const r = row as Row;
    for (const k of need) if (r[k] === undefined || r[k] === null) problems.push(`${where}: field "${k}" is missing`);
    const id = String(r[spec.id_field]);
    if (ids.has(id)) problems.push(`${where}: field "${spec.id_field}" repeats id ${id}`);
    ids.add(id);
    if (spec.type === 'ifeval') {
      const list = r.instruction_id_list;
      const kw = r.kwargs;
      if (!Array.isArray(list) || !Array.isArray(kw) || list.length !== kw.length || list.length === 0) {
        problems.push(`${where}: fields "instruction_id_list" and "kwargs" must be non-empty arrays of equal length`);
      } else {
        list.forEach((id, j) => {
          const p = kwargsProblem(String(id), kw[j]);
          if (p) problems.push(`${where}: field "instruction_id_list[${j}]"/"kwargs[${j}]": ${p}`);
        });
      }
    }
    if (spec.type === 'loglikelihood_rolling' && typeof r[spec.text_field] !== 'string') {
      problems.push(`${where}: field "${spec.text_field}" must be a string`);
    }
    rows.push(r);
  });
  if (problems.length) throw new UserErrors(problems, { file });
  if (rows.length === 0) throw new UserError(`${file}: dataset has no rows`, { file });
  return rows;
}

/** Loads `NAME.yaml` (or a path to a yaml) and its dataset, resolved relative to the yaml. */
export async function loadTask(nameOrPath: string, evalsDir: string): Promise<LoadedTask> {
  const yamlPath = /\.ya?ml$/.test(nameOrPath) ? path.resolve(nameOrPath) : path.resolve(evalsDir, `${nameOrPath}.yaml`);
  let text: string;
  try {
    text = await fs.readFile(yamlPath, 'utf8');
  } catch {
    let known: string[] = [];
    try {
      known = (await fs.readdir(path.resolve(evalsDir))).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, ''));
    } catch { /* no evals dir: the message below says so */ }
    throw new UserError(`eval suite "${nameOrPath}": no task description at ${yamlPath}` + (known.length ? ` (known suites: ${known.join(', ')})` : ''), { file: yamlPath });
  }
  const spec = parseTaskSpec(text, yamlPath);
  const datasetPath = path.resolve(path.dirname(yamlPath), spec.dataset);
  let data: string;
  try {
    data = await fs.readFile(datasetPath, 'utf8');
  } catch {
    throw new UserError(`${yamlPath}: field "dataset": file ${datasetPath} cannot be read`, { file: yamlPath, field: 'dataset' });
  }
  return { spec, yamlPath, datasetPath, rows: parseDataset(data, spec, datasetPath) };
}

/** Rows to evaluate: the first `limit` (the CLI flag wins over the yaml's own limit). */
export function selectRows(task: LoadedTask, limit?: number): Row[] {
  const n = limit ?? task.spec.limit;
  return n === undefined ? task.rows : task.rows.slice(0, n);
}
