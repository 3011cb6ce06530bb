/**
 * What `mergelab serve` answers, independent of HTTP: completions and chat completions over the
 * evaluator's model interface. Greedy requests without logprobs go through `generate`, the very
 * call the built-in evaluator makes, and concurrent ones are batched into one call; sampling,
 * logprobs and token-id prompts use the backend's token-level access. Model calls run one at a
 * time (the runtime is single-threaded), so a request that arrives while one runs waits and joins
 * the next batch.
 */
import { randomBytes } from 'node:crypto';
import { cutAtStop, type EvalBackend, type Generation, type TokenLevel } from '../eval/backends/types.js';
import { topIds } from '../eval/backends/zoo-tokens.js';
import { isUserError } from '../util/errors.js';
import { mulberry32 } from '../util/random.js';
import type { ChatRenderer } from './chat.js';
import { ApiError, type ChatRequest, type CompletionLogprobs, type CompletionRequest } from './protocol.js';
import { choiceSeed, chooseToken, type SamplingParams } from './sampling.js';

export interface ServedModel {
  /** The name clients pass as `model` (vLLM's --served-model-name; default: the folder as given). */
  id: string;
  /** Also accepted as `model`: the folder path. */
  aliases: string[];
  created: number;
  backend: EvalBackend;
  tokens: TokenLevel;
  chat: ChatRenderer | null;
}

/** One generated or echoed token with its log-probability and the most likely alternatives. */
interface Entry { id: number; logprob: number | null; top: Array<{ id: number; logprob: number }> | null }

interface Choice {
  text: string;
  /** Generated tokens (without <eos>), when known token by token. */
  entries: Entry[] | null;
  finish: 'stop' | 'length';
  completionTokens: number;
}

interface GenParams extends SamplingParams { maxTokens: number; n: number; stop: string[]; logprobs: number | null; seed: number }

const BATCH_WINDOW_MS = 5;

const newId = (prefix: string) => `${prefix}-${randomBytes(12).toString('hex')}`;

export class ServeEngine {
  private tail: Promise<unknown> = Promise.resolve();
  private pending: Array<{ prompt: string; maxNewTokens: number; resolve: (g: Generation) => void; reject: (e: unknown) => void }> = [];
  private flushQueued = false;
  private requests = 0;
  /** Sizes of the greedy batches sent to `generate`, for the log and tests. */
  readonly batchSizes: number[] = [];

  constructor(private readonly m: ServedModel, private readonly opts: { seed: number; batchSize: number }) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }

  private greedy(prompt: string, maxNewTokens: number): Promise<Generation> {
    return new Promise((resolve, reject) => {
      this.pending.push({ prompt, maxNewTokens, resolve, reject });
      if (this.flushQueued) return;
      this.flushQueued = true;
      void this.serial(async () => {
        // The model call blocks the event loop, so requests sent together would each start their
        // own call as they arrive; a few milliseconds of waiting lets them join one batch.
        await new Promise((r) => setTimeout(r, BATCH_WINDOW_MS));
        this.flushQueued = false;
        const batch = this.pending.splice(0);
        this.batchSizes.push(batch.length);
        try {
          const out = await this.m.backend.generate(batch.map((b, i) => ({ id: String(i), prompt: b.prompt, maxNewTokens: b.maxNewTokens, stop: [] })), { batchSize: this.opts.batchSize });
          batch.forEach((b, i) => b.resolve(out[i]));
        } catch (e) {
          batch.forEach((b) => b.reject(e));
        }
      });
    });
  }

  checkModel(model: string | undefined): void {
    if (model === undefined || model === this.m.id || this.m.aliases.includes(model)) return;
    throw new ApiError(404, `The model \`${model}\` does not exist (this server serves \`${this.m.id}\`).`, 'invalid_request_error', 'model', 'model_not_found');
  }

  listModels(): unknown {
    return { object: 'list', data: [{ id: this.m.id, object: 'model', created: this.m.created, owned_by: 'mergelab', root: this.m.aliases[0] ?? this.m.id, max_model_len: this.m.tokens.contextLength }] };
  }

  private encode(text: string, param: string): number[] {
    try {
      return this.m.tokens.encode(text);
    } catch (e) {
      if (isUserError(e)) throw new ApiError(400, e.message, 'invalid_request_error', param);
      throw e;
    }
  }

  private withBos(ids: number[]): number[] {
    return this.m.tokens.bosId === null ? ids : [this.m.tokens.bosId, ...ids];
  }

  private checkLength(full: number[], maxTokens: number, param: string): void {
    const ctx = this.m.tokens.contextLength;
    if (full.length + maxTokens > ctx) {
      throw new ApiError(400, `This model's maximum context length is ${ctx} tokens. However, you requested ${full.length + maxTokens} tokens (${full.length} in the ${param}, ${maxTokens} for the completion). Please reduce the length of the ${param} or the completion.`, 'invalid_request_error', param);
    }
  }

  private text(ids: readonly number[]): string {
    return ids.map((id) => this.m.tokens.tokenText(id)).join('');
  }

  /** `n` continuations of one prompt (`text` null when the prompt came as token ids). */
  private async generate(text: string | null, full: number[], p: GenParams, choiceBase: number): Promise<Choice[]> {
    const tk = this.m.tokens;
    if (p.maxTokens === 0) return Array.from({ length: p.n }, () => ({ text: '', entries: [], finish: 'length' as const, completionTokens: 0 }));
    if (p.temperature === 0 && p.logprobs === null && text !== null) {
      const g = await this.greedy(text, p.maxTokens);
      const hitLimit = g.hitLimit ?? false;
      const tokens = this.encode(g.text, 'prompt').length + (hitLimit ? 0 : 1);
      return Array.from({ length: p.n }, () => finishChoice({ text: g.text, entries: null, finish: hitLimit ? 'length' : 'stop', completionTokens: tokens }, p.stop, tk));
    }
    // Greedy choices are all the same: decode one row and copy it.
    const rows = p.temperature === 0 ? 1 : p.n;
    const rngs = Array.from({ length: rows }, (_, j) => mulberry32(choiceSeed(p.seed, choiceBase + j)));
    const picked: Entry[][] = Array.from({ length: rows }, () => []);
    const ids = await this.serial(() =>
      tk.decode(Array.from({ length: rows }, () => full), {
        maxNewTokens: p.maxTokens,
        batchSize: this.opts.batchSize,
        pick: (row, lp) => {
          const id = chooseToken(lp, p, rngs[row]);
          picked[row].push({ id, logprob: lp[id], top: p.logprobs ? topIds(lp, p.logprobs).map((t) => ({ id: t, logprob: lp[t] })) : [] });
          return id;
        },
      }),
    );
    const choices = ids.map((seq, j) => {
      const eos = seq.length > 0 && seq[seq.length - 1] === tk.eosId;
      const kept = eos ? seq.slice(0, -1) : seq;
      return finishChoice({ text: this.text(kept), entries: picked[j].slice(0, kept.length), finish: eos ? 'stop' : 'length', completionTokens: seq.length }, p.stop, tk);
    });
    return Array.from({ length: p.n }, (_, j) => choices[rows === 1 ? 0 : j]);
  }

  private params(r: { temperature: number; top_p: number; top_k: number; n: number; stop: string[]; seed?: number | null }, maxTokens: number, logprobs: number | null): GenParams {
    const seed = r.seed ?? (this.opts.seed + this.requests) >>> 0;
    return { temperature: r.temperature, topP: r.top_p, topK: r.top_k, n: r.n, stop: r.stop, maxTokens, logprobs, seed };
  }

  async completions(r: CompletionRequest): Promise<unknown> {
    this.checkModel(r.model);
    this.requests++;
    const tk = this.m.tokens;
    const raw = r.prompt;
    const prompts: Array<{ text: string | null; ids: number[] }> =
      typeof raw === 'string' ? [{ text: raw, ids: this.encode(raw, 'prompt') }]
      : typeof raw[0] === 'string' ? (raw as string[]).map((t, i) => ({ text: t, ids: this.encode(t, `prompt.${i}`) }))
      : typeof raw[0] === 'number' ? [{ text: null, ids: raw as number[] }]
      : (raw as number[][]).map((ids) => ({ text: null, ids }));
    for (const p of prompts) {
      const bad = p.ids.find((id) => id >= tk.vocabSize);
      if (bad !== undefined) throw new ApiError(400, `field "prompt": token id ${bad} is outside the vocabulary 0..${tk.vocabSize - 1}`, 'invalid_request_error', 'prompt');
      this.checkLength(this.withBos(p.ids), r.max_tokens, 'prompt');
    }
    const p = this.params(r, r.max_tokens, r.logprobs ?? null);
    const perPrompt = await Promise.all(prompts.map((q, i) => this.generate(q.text, this.withBos(q.ids), p, i * p.n)));
    const echoed = r.echo && r.logprobs != null ? await this.serial(() => tk.sequenceLogprobs(prompts.map((q) => this.withBos(q.ids)), { top: r.logprobs!, batchSize: this.opts.batchSize })) : null;
    const choices = perPrompt.flatMap((cs, pi) =>
      cs.map((c, j) => {
        const promptText = prompts[pi].text ?? this.text(prompts[pi].ids);
        let logprobs: CompletionLogprobs | null = null;
        if (r.logprobs != null) {
          const entries: Entry[] = [];
          if (echoed) {
            const full = this.withBos(prompts[pi].ids);
            full.forEach((id, t) => entries.push({ id, logprob: echoed[pi].logprobs[t], top: echoed[pi].top[t] }));
          }
          entries.push(...(c.entries ?? []));
          logprobs = completionLogprobs(entries, tk);
        }
        return { index: pi * p.n + j, text: r.echo ? promptText + c.text : c.text, logprobs, finish_reason: c.finish, stop_reason: null };
      }),
    );
    const promptTokens = prompts.reduce((s, q) => s + this.withBos(q.ids).length, 0);
    const completionTokens = perPrompt.flat().reduce((s, c) => s + c.completionTokens, 0);
    return { id: newId('cmpl'), object: 'text_completion', created: Math.floor(Date.now() / 1000), model: this.m.id, choices, usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens } };
  }

  /** The chat prompt as text, without the <bos> the template writes (tokenisation adds it once). */
  renderChat(r: Pick<ChatRequest, 'messages' | 'add_generation_prompt'>): string {
    const chat = this.m.chat;
    if (!chat) throw new ApiError(400, 'this model has no chat template (no chat_template in its tokenizer_config.json); start mergelab serve with --chat-template FILE', 'invalid_request_error', 'messages');
    let text: string;
    try {
      text = chat.render(r.messages, r.add_generation_prompt);
    } catch (e) {
      throw new ApiError(400, `the chat template (${chat.source}) failed on these messages: ${(e as Error).message}`, 'invalid_request_error', 'messages');
    }
    if (chat.bosToken && this.m.tokens.bosId !== null && text.startsWith(chat.bosToken)) text = text.slice(chat.bosToken.length);
    return text;
  }

  async chat(r: ChatRequest): Promise<unknown> {
    this.checkModel(r.model);
    this.requests++;
    const tk = this.m.tokens;
    const text = this.renderChat(r);
    const full = this.withBos(this.encode(text, 'messages'));
    const maxTokens = r.max_completion_tokens ?? r.max_tokens ?? Math.max(0, tk.contextLength - full.length);
    this.checkLength(full, maxTokens, 'messages');
    const p = this.params(r, maxTokens, r.logprobs ? r.top_logprobs : null);
    const cs = await this.generate(text, full, p, 0);
    const choices = cs.map((c, index) => ({
      index,
      message: { role: 'assistant', content: c.text },
      logprobs: r.logprobs ? { content: (c.entries ?? []).map((e) => chatLogprob(e, tk)) } : null,
      finish_reason: c.finish,
      stop_reason: null,
    }));
    const completionTokens = cs.reduce((s, c) => s + c.completionTokens, 0);
    return { id: newId('chatcmpl'), object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: this.m.id, choices, usage: { prompt_tokens: full.length, completion_tokens: completionTokens, total_tokens: full.length + completionTokens } };
  }
}

/** Applies stop sequences: the text is cut before the first one, and so are its tokens. */
function finishChoice(c: Choice, stop: string[], tk: TokenLevel): Choice {
  const { text, stopped } = cutAtStop(c.text, stop);
  if (!stopped) return c;
  let entries = c.entries;
  if (entries) {
    let at = 0;
    entries = entries.filter((e) => {
      const start = at;
      at += tk.tokenText(e.id).length;
      return start < text.length;
    });
  }
  return { text, entries, finish: 'stop', completionTokens: c.completionTokens };
}

/**
 * vLLM's completion logprobs: the token's own log-probability first in `top_logprobs`, then the
 * `logprobs` most likely tokens; the first prompt token has none (null). Offsets index the
 * returned text; <bos>, which the text does not contain, sits at 0 and takes no characters.
 */
function completionLogprobs(entries: Entry[], tk: TokenLevel): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = 0;
  entries.forEach((e, i) => {
    const t = tk.tokenText(e.id);
    out.tokens.push(t);
    out.token_logprobs.push(e.logprob);
    out.text_offset.push(at);
    if (!(i === 0 && e.id === tk.bosId)) at += t.length;
    if (e.logprob === null || e.top === null) {
      out.top_logprobs.push(null);
      return;
    }
    const top: Record<string, number> = { [t]: e.logprob };
    for (const x of e.top) if (!(tk.tokenText(x.id) in top)) top[tk.tokenText(x.id)] = x.logprob;
    out.top_logprobs.push(top);
  });
  return out;
}

function chatLogprob(e: Entry, tk: TokenLevel): unknown {
  const t = tk.tokenText(e.id);
  return {
    token: t,
    logprob: e.logprob,
    bytes: [...Buffer.from(t, 'utf8')],
    top_logprobs: (e.top ?? []).map((x) => ({ token: tk.tokenText(x.id), logprob: x.logprob, bytes: [...Buffer.from(tk.tokenText(x.id), 'utf8')] })),
  };
}
