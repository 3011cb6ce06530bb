/**
 * The evaluator's backend over an OpenAI-compatible server (vLLM, mergelab serve, ...): greedy
 * completions (`temperature: 0`), one request per item with bounded concurrency, chat suites
 * through /v1/chat/completions, and scoring through `echo: true, max_tokens: 0, logprobs: 0`
 * (vLLM answers it with the prompt's token log-probabilities, the first one null). A request that
 * gets HTTP 5xx or 429 or loses its connection is retried with exponential backoff; a 4xx or a
 * request with no answer within the timeout fails the evaluation.
 */
import pLimit from 'p-limit';
import { z } from 'zod';
import { EvalBackendError } from './process.js';
import type { EvalBackend, GenerateRequest, Generation, Score, ScoreRequest } from './types.js';

export interface OpenAIClientOptions {
  /** Server root, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted). */
  baseUrl: string;
  /** The `model` sent; default: the first id at /v1/models. */
  model?: string;
  concurrency: number;
  retries: number;
  backoffMs: number;
  requestTimeoutMs: number;
  /** Use /v1/chat/completions for requests that carry chat turns. */
  chat: boolean;
  signal?: AbortSignal;
  /** Why the server cannot answer any more (it exited), if so: failing fast beats retrying. */
  serverGone?: () => string | null;
  name?: string;
}

const choiceText = z.object({ text: z.string(), finish_reason: z.string().nullish(), logprobs: z.object({ token_logprobs: z.array(z.number().nullable()) }).nullish() });
const completionBody = z.object({ choices: z.array(choiceText).min(1) });
const chatBody = z.object({ choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }), finish_reason: z.string().nullish() })).min(1) });
const modelsBody = z.object({ data: z.array(z.object({ id: z.string() })) });

export function rootUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v1$/, '');
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

class Retryable extends Error {}

export class OpenAIClient implements EvalBackend {
  readonly name: string;
  private readonly root: string;
  private model = '';
  private readonly limit: ReturnType<typeof pLimit>;
  /** Requests retried, by cause, for the record. */
  readonly retried: string[] = [];

  private constructor(private readonly o: OpenAIClientOptions) {
    this.root = rootUrl(o.baseUrl);
    this.name = o.name ?? `openai:${this.root}`;
    this.limit = pLimit(o.concurrency);
  }

  /** Connects (asks /v1/models for the model name unless given). */
  static async connect(o: OpenAIClientOptions): Promise<OpenAIClient> {
    const c = new OpenAIClient(o);
    if (o.model) c.model = o.model;
    else {
      const m = modelsBody.safeParse(await c.call('GET', '/v1/models'));
      if (!m.success || m.data.data.length === 0) throw new EvalBackendError(`${c.root}/v1/models lists no model`);
      c.model = m.data.data[0].id;
    }
    return c;
  }

  get servedModel(): string {
    return this.model;
  }

  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const url = `${this.root}${path}`;
    let last = '';
    for (let attempt = 0; ; attempt++) {
      this.o.signal?.throwIfAborted();
      try {
        return await this.once(method, url, body);
      } catch (e) {
        if (!(e instanceof Retryable)) throw e;
        last = e.message;
      }
      const gone = this.o.serverGone?.();
      if (gone) throw new EvalBackendError(`${method} ${path}: ${last}; ${gone}`);
      if (attempt >= this.o.retries) throw new EvalBackendError(`${method} ${path} failed after ${attempt + 1} tries: ${last}`);
      this.retried.push(last);
      await sleep(this.o.backoffMs * 2 ** attempt, this.o.signal);
    }
  }

  private async once(method: string, url: string, body: unknown): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.o.requestTimeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers: body === undefined ? undefined : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: this.o.signal ? AbortSignal.any([this.o.signal, timeout]) : timeout,
      });
      text = await res.text();
    } catch (e) {
      this.o.signal?.throwIfAborted();
      if (timeout.aborted) throw new EvalBackendError(`${method} ${url}: no answer within ${this.o.requestTimeoutMs / 1000} s (request_timeout)`);
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Retryable(`connection failed (${cause?.code ?? cause?.message ?? (e as Error).message})`);
    }
    if (res.status >= 500 || res.status === 429) throw new Retryable(`HTTP ${res.status}: ${text.slice(0, 200)}`);
    if (!res.ok) {
      let msg = text.slice(0, 300);
      try {
        msg = (JSON.parse(text) as { error?: { message?: string }; message?: string }).error?.message ?? (JSON.parse(text) as { message?: string }).message ?? msg;
      } catch {
        // not JSON: the raw text says it
      }
      throw new EvalBackendError(`${method} ${url}: HTTP ${res.status}: ${msg}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new EvalBackendError(`${method} ${url}: answer is not JSON: ${text.slice(0, 200)}`);
    }
  }

  private parse<T>(schema: z.ZodType<T>, json: unknown, path: string): T {
    const r = schema.safeParse(json);
    if (!r.success) throw new EvalBackendError(`POST ${path}: unexpected answer: ${r.error.issues.map((i) => `field "${i.path.join('.')}": ${i.message}`).join('; ')}`);
    return r.data;
  }

  private async one(r: GenerateRequest): Promise<Generation> {
    const stop = r.stop.length ? { stop: [...r.stop] } : {};
    if (this.o.chat && r.messages) {
      const json = await this.call('POST', '/v1/chat/completions', { model: this.model, messages: r.messages, max_tokens: r.maxNewTokens, temperature: 0, ...stop });
      const c = this.parse(chatBody, json, '/v1/chat/completions').choices[0];
      return { text: c.message.content ?? '', hitLimit: c.finish_reason == null ? undefined : c.finish_reason === 'length' };
    }
    const json = await this.call('POST', '/v1/completions', { model: this.model, prompt: r.prompt, max_tokens: r.maxNewTokens, temperature: 0, ...stop });
    const c = this.parse(completionBody, json, '/v1/completions').choices[0];
    return { text: c.text, hitLimit: c.finish_reason == null ? undefined : c.finish_reason === 'length' };
  }

  generate(reqs: readonly GenerateRequest[]): Promise<Generation[]> {
    return Promise.all(reqs.map((r) => this.limit(() => this.one(r))));
  }

  score(reqs: readonly ScoreRequest[]): Promise<Score[]> {
    return Promise.all(
      reqs.map((r) =>
        this.limit(async () => {
          const json = await this.call('POST', '/v1/completions', { model: this.model, prompt: r.text, max_tokens: 0, echo: true, logprobs: 0, temperature: 0 });
          const lps = (this.parse(completionBody, json, '/v1/completions').choices[0].logprobs?.token_logprobs ?? []).filter((x): x is number => x !== null);
          if (lps.length === 0) throw new EvalBackendError(`POST /v1/completions: no prompt logprobs in the answer (the server must support echo with logprobs)`);
          return { nll: -lps.reduce((s, x) => s + x, 0), tokens: lps.length };
        }),
      ),
    );
  }

  dispose(): void {
    this.limit.clearQueue();
  }
}

/** Polls GET /v1/models until it answers 200, the process exits, time runs out or `signal` aborts. */
export async function waitReady(baseUrl: string, o: { timeoutMs: number; signal?: AbortSignal; exited: () => string | null }): Promise<void> {
  const url = `${rootUrl(baseUrl)}/v1/models`;
  const deadline = Date.now() + o.timeoutMs;
  let wait = 100;
  for (;;) {
    o.signal?.throwIfAborted();
    const gone = o.exited();
    if (gone) throw new EvalBackendError(`${gone} before it was ready`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Math.min(5000, Math.max(200, deadline - Date.now()))) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() >= deadline) throw new EvalBackendError(`server not ready after ${Math.round(o.timeoutMs / 1000)} s (GET /v1/models never answered 200; ready_timeout)`);
    await sleep(Math.min(wait, Math.max(0, deadline - Date.now())), o.signal);
    wait = Math.min(1000, wait * 2);
  }
}
