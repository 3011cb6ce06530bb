/**
 * The experiment file's say on how points are scored: `eval.backend` (which runner), `resources`
 * (GPUs handed to concurrent evaluations) and `max_models_on_disk`. Zod schemas only; the
 * experiment parser embeds them.
 *
 *   eval:
 *     suites: [math, chat]
 *     backend: {type: openai, serve: "vllm serve {model} --port {port}", ready_timeout: 900}
 *   resources: {gpus: [0, 1, 2, 3], gpus_per_eval: 1}
 *   max_models_on_disk: 4
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { UserErrors } from '../../util/errors.js';
import { nearest } from '../../util/suggest.js';

/** lm-evaluation-harness, as its README runs it on a Hugging Face folder; `--limit` is added when the experiment sets one. */
export const DEFAULT_LM_EVAL_COMMAND = 'lm_eval --model hf --model_args pretrained={model},dtype=bfloat16 --tasks {tasks} --output_path {out} --log_samples';
/** Our suites as lm-eval tasks; a suite not in the map cannot be scored by lm-eval. */
export const DEFAULT_LM_EVAL_TASKS: Record<string, string> = { math: 'gsm8k', chat: 'ifeval' };

const seconds = (dflt: number) => z.number({ error: 'expected seconds (a number > 0)' }).positive({ error: 'expected seconds > 0' }).default(dflt);

const commandTemplate = (field: string, required: string[]) =>
  z.string({ error: `expected the command line as a string` }).min(1, { error: 'the command is empty' }).superRefine((s, ctx) => {
    if (s.trim() === '') ctx.addIssue({ code: 'custom', message: 'the command is empty' });
    for (const p of required) if (!s.includes(p)) ctx.addIssue({ code: 'custom', message: `${field} must contain ${p} (${p === '{port}' ? 'mergelab gives each server its own port' : p === '{model}' ? 'the model folder to load' : 'filled in by mergelab'})` });
    const unknown = [...s.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]).filter((n) => !KNOWN_PLACEHOLDERS.has(n));
    if (unknown.length) ctx.addIssue({ code: 'custom', message: `unknown placeholder {${unknown[0]}} (known: ${[...KNOWN_PLACEHOLDERS].map((k) => `{${k}}`).join(', ')})` });
  });
const KNOWN_PLACEHOLDERS = new Set(['model', 'port', 'gpu', 'host', 'task_file', 'tasks', 'out', 'limit', 'name']);

const env = z.record(z.string(), z.string(), { error: 'expected a mapping {NAME: value}' }).optional();

const BuiltinSchema = z.strictObject({ type: z.literal('builtin') });

const CommandSchema = z.strictObject({
  type: z.literal('command'),
  /** `cmd {model} {task_file}`: the JSONL protocol of `mergelab eval --delegate-cmd`. */
  cmd: commandTemplate('cmd', ['{task_file}']),
  timeout: seconds(3600),
});

const OpenAISchema = z
  .strictObject({
    type: z.literal('openai'),
    /** Started per evaluated model: `CMD {model} --port {port}`; `{gpu}` = the GPUs given to it, comma-separated. */
    serve: commandTemplate('serve', ['{model}', '{port}']).optional(),
    /** A server the user runs (then no process is started, and every model is scored there). */
    endpoint: z.url({ error: 'expected a URL such as http://127.0.0.1:8000' }).optional(),
    /** The `model` sent with each request; default: the first id the server lists at /v1/models. */
    model: z.string().min(1).optional(),
    host: z.string().min(1).default('127.0.0.1'),
    ready_timeout: seconds(900),
    request_timeout: seconds(600),
    /** Requests in flight at once. */
    concurrency: z.number().int().positive().max(1024).default(16),
    /** Further tries of a request that got HTTP 5xx, 429 or a dropped connection. */
    retries: z.number().int().nonnegative().max(20).default(4),
    /** First backoff; each retry doubles it. */
    backoff: seconds(1),
    /** Seconds between SIGTERM and SIGKILL when the server is stopped. */
    stop_grace: seconds(15),
    /** Send suites that define chat turns to /v1/chat/completions (false: always /v1/completions). */
    chat: z.boolean().default(true),
    env,
  })
  .superRefine((o, ctx) => {
    if ((o.serve === undefined) === (o.endpoint === undefined)) ctx.addIssue({ code: 'custom', path: ['serve'], message: 'give either `serve` (a command started per model) or `endpoint` (a running server), not both or neither' });
  });

const LmEvalSchema = z.strictObject({
  type: z.literal('lm-eval'),
  command: commandTemplate('command', ['{model}', '{tasks}', '{out}']).default(DEFAULT_LM_EVAL_COMMAND),
  /** Suite name -> lm-eval task name. */
  tasks: z.record(z.string(), z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected an lm-eval task name' })).default(DEFAULT_LM_EVAL_TASKS),
  /** Adds `--apply_chat_template` (lm-eval renders prompts with the model's chat template). */
  apply_chat_template: z.boolean().default(false),
  timeout: seconds(48 * 3600),
  env,
});

const BACKEND_TYPES = ['builtin', 'command', 'openai', 'lm-eval'];

/**
 * `builtin`, or a mapping with a `type`. A bare type name is read as `{type: NAME}`, so `backend:
 * openai` is told what an openai backend still needs rather than that it is not a mapping.
 */
export const EvalBackendSchema = z
  .preprocess(
    (v) => (typeof v === 'string' ? { type: v } : v),
    z.discriminatedUnion('type', [BuiltinSchema, CommandSchema, OpenAISchema, LmEvalSchema], {
      error: (iss) => {
        const t = (iss.input as { type?: unknown } | undefined)?.type;
        if (iss.input === null || typeof iss.input !== 'object' || Array.isArray(iss.input)) return 'expected `builtin` or a mapping {type: builtin | command | openai | lm-eval, ...}';
        if (t === undefined) return `expected a field \`type\` (${BACKEND_TYPES.join(', ')})`;
        const near = typeof t === 'string' ? nearest(t, BACKEND_TYPES) : undefined;
        return `unknown backend type ${JSON.stringify(t)} (expected ${BACKEND_TYPES.join(', ')})${near ? ` (did you mean '${near}'?)` : ''}`;
      },
    }),
  )
  .default({ type: 'builtin' as const });
export type EvalBackendConfig = z.output<typeof EvalBackendSchema>;
export type OpenAIConfig = Extract<EvalBackendConfig, { type: 'openai' }>;
export type LmEvalConfig = Extract<EvalBackendConfig, { type: 'lm-eval' }>;
export type CommandConfig = Extract<EvalBackendConfig, { type: 'command' }>;

/** A GPU as CUDA_VISIBLE_DEVICES names it: an index or a UUID. */
const Gpu = z.union([z.number().int().nonnegative(), z.string().regex(/^(GPU|MIG)-[A-Za-z0-9-]+$/, { error: 'expected a GPU index or a UUID (GPU-...)' })]);
export type Gpu = z.output<typeof Gpu>;

export const ResourcesSchema = z
  .strictObject({
    gpus: z.array(Gpu, { error: 'expected a list of GPU indices, e.g. [0, 1]' }).default([]),
    gpus_per_eval: z.number().int().positive().default(1),
  })
  .superRefine((r, ctx) => {
    const dup = r.gpus.find((g, i) => r.gpus.indexOf(g) !== i);
    if (dup !== undefined) ctx.addIssue({ code: 'custom', path: ['gpus'], message: `GPU ${dup} is listed twice` });
    if (r.gpus.length > 0 && r.gpus_per_eval > r.gpus.length) ctx.addIssue({ code: 'custom', path: ['gpus_per_eval'], message: `${r.gpus_per_eval} GPUs per evaluation but only ${r.gpus.length} listed` });
  })
  .default({ gpus: [], gpus_per_eval: 1 });
export type Resources = z.output<typeof ResourcesSchema>;

/** Merged models kept on disk at once (a merge waits for an evaluated one to be deleted); absent = no bound. */
export const MaxModelsOnDiskSchema = z.number({ error: 'expected a whole number >= 1' }).int({ error: 'expected a whole number >= 1' }).positive({ error: 'expected a whole number >= 1' }).nullish();

/** Parses `eval.backend` alone, naming the file and field of each problem (for callers outside the experiment parser). */
export function parseBackendConfig(raw: unknown, file: string, field = 'eval.backend'): EvalBackendConfig {
  const r = EvalBackendSchema.safeParse(raw);
  if (r.success) return r.data;
  throw new UserErrors(r.error.issues.map((i) => `${file}: field "${[field, ...i.path].join('.')}": ${i.message}`), { file });
}

/**
 * What evaluation cache keys must carry: the settings that can change a score (the command or
 * endpoint, the model name, chat use, the task map), and not those that cannot (timeouts,
 * concurrency, retries, GPUs).
 */
export function backendKey(cfg: EvalBackendConfig): string {
  const canonical = (() => {
    switch (cfg.type) {
      case 'builtin':
        return null;
      case 'command':
        return { cmd: cfg.cmd };
      case 'openai':
        return { serve: cfg.serve ?? null, endpoint: cfg.endpoint ?? null, model: cfg.model ?? null, chat: cfg.chat, env: sorted(cfg.env) };
      case 'lm-eval':
        return { command: cfg.command, tasks: sorted(cfg.tasks), apply_chat_template: cfg.apply_chat_template, env: sorted(cfg.env) };
    }
  })();
  if (canonical === null) return 'builtin';
  return `${cfg.type}:${createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 16)}`;
}

function sorted(r: Record<string, string> | undefined): Array<[string, string]> {
  return Object.entries(r ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
