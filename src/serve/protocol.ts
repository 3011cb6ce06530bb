/**
 * Request bodies of the OpenAI-compatible endpoints, validated with zod, and OpenAI's error shape.
 * Fields the server cannot honour (streaming, penalties, logit bias, suffix) are refused with a
 * 400 that names them rather than silently ignored; other unknown fields are ignored, as vLLM does.
 */
import { z } from 'zod';

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly type = 'invalid_request_error', readonly param: string | null = null, readonly code: string | null = null) {
    super(message);
  }
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const stop = z.union([z.string(), z.array(z.string()).max(16)]).nullish().transform((s) => (s == null ? [] : typeof s === 'string' ? [s] : s)).pipe(z.array(z.string().min(1, 'a stop sequence cannot be empty')));

const unsupported = {
  stream: z.union([z.literal(false), z.null()], { error: 'streaming is not supported by mergelab serve: send stream: false' }).optional(),
  presence_penalty: z.union([z.literal(0), z.null()], { error: 'presence_penalty is not supported: leave it out or 0' }).optional(),
  frequency_penalty: z.union([z.literal(0), z.null()], { error: 'frequency_penalty is not supported: leave it out or 0' }).optional(),
  logit_bias: z.union([z.object({}).strict(), z.null()], { error: 'logit_bias is not supported' }).optional(),
};

const sampling = {
  model: z.string().optional(),
  temperature: z.number().min(0).max(2).nullish().transform((v) => v ?? 1),
  top_p: z.number().gt(0).max(1).nullish().transform((v) => v ?? 1),
  /** vLLM's extension: -1 (or absent) keeps every token. */
  top_k: z.number().int().min(-1).nullish().transform((v) => v ?? -1),
  n: z.number().int().min(1).max(16).nullish().transform((v) => v ?? 1),
  seed: z.number().int().nullish(),
  stop,
  ...unsupported,
};

const tokenIds = z.array(z.number().int().nonnegative()).min(1);

export const completionRequest = z.object({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)], { error: 'expected a string, a list of strings, a list of token ids or a list of such lists' }),
  max_tokens: z.number().int().nonnegative().nullish().transform((v) => v ?? 16),
  echo: z.boolean().nullish().transform((v) => v ?? false),
  logprobs: z.number().int().min(0).max(20).nullish(),
  best_of: z.number().int().min(1).nullish(),
  suffix: z.null({ error: 'suffix is not supported' }).optional(),
}).superRefine((r, ctx) => {
  if (r.best_of != null && r.best_of !== r.n) ctx.addIssue({ code: 'custom', path: ['best_of'], message: 'best_of other than n is not supported' });
});
export type CompletionRequest = z.output<typeof completionRequest>;

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const message = z.object({
  role: z.enum(['system', 'user', 'assistant'], { error: 'expected role system, user or assistant' }),
  content: z.union([z.string(), z.array(textPart).min(1)], { error: 'expected a string or a list of {type: "text", text} parts' }).transform((c) => (typeof c === 'string' ? c : c.map((p) => p.text).join(''))),
});

export const chatRequest = z.object({
  ...sampling,
  messages: z.array(message).min(1, 'expected at least one message'),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  logprobs: z.boolean().nullish().transform((v) => v ?? false),
  top_logprobs: z.number().int().min(0).max(20).nullish().transform((v) => v ?? 0),
  add_generation_prompt: z.boolean().nullish().transform((v) => v ?? true),
});
export type ChatRequest = z.output<typeof chatRequest>;

/** Parses a body or throws a 400 naming every bad field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const msg = r.error.issues.map((i) => `field "${i.path.join('.') || '(body)'}": ${i.message}`).join('; ');
  throw new ApiError(400, msg, 'invalid_request_error', first.path.join('.') || null);
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: Array<number | null>;
  top_logprobs: Array<Record<string, number> | null>;
  text_offset: number[];
}
