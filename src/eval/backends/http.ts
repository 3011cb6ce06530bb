/**
 * Delegated evaluation over an OpenAI-compatible completions endpoint (vLLM, llama.cpp server,
 * TGI...): greedy generation with `temperature: 0`, and scoring with `echo: true, max_tokens: 0,
 * logprobs: 0`, which returns the prompt's token log-probabilities (the first token has none).
 */
import { z } from 'zod';
import { UserError } from '../../util/errors.js';
import type { EvalBackend, GenerateRequest, Generation, Score, ScoreRequest } from './types.js';

const completion = z.object({
  choices: z.array(z.object({
    index: z.number().int().nonnegative(),
    text: z.string(),
    finish_reason: z.string().nullable().optional(),
    logprobs: z.object({ token_logprobs: z.array(z.number().nullable()) }).nullable().optional(),
  })),
});

export function completionsUrl(endpoint: string): string {
  const u = endpoint.replace(/\/+$/, '');
  return /\/completions$/.test(u) ? u : `${u}/v1/completions`;
}

export class HttpBackend implements EvalBackend {
  readonly name: string;
  private readonly url: string;
  constructor(endpoint: string, private readonly model: string, private readonly timeoutMs = 10 * 60_000) {
    this.url = completionsUrl(endpoint);
    this.name = `http:${this.url}`;
  }

  private async post(body: Record<string, unknown>, n: number): Promise<z.infer<typeof completion>['choices']> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: this.model, ...body }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new UserError(`--endpoint ${this.url}: request failed: ${(e as Error).message}`, { field: 'endpoint' });
    }
    const text = await res.text();
    if (!res.ok) throw new UserError(`--endpoint ${this.url}: HTTP ${res.status}: ${text.slice(0, 300)}`, { field: 'endpoint' });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UserError(`--endpoint ${this.url}: response is not JSON: ${text.slice(0, 200)}`, { field: 'endpoint' });
    }
    const p = completion.safeParse(json);
    if (!p.success) throw new UserError(`--endpoint ${this.url}: unexpected response: ${p.error.issues.map((i) => `field "${i.path.join('.')}": ${i.message}`).join('; ')}`, { field: 'endpoint' });
    const choices = [...p.data.choices].sort((a, b) => a.index - b.index);
    if (choices.length !== n) throw new UserError(`--endpoint ${this.url}: asked for ${n} completions, got ${choices.length}`, { field: 'endpoint' });
    return choices;
  }

  async generate(reqs: readonly GenerateRequest[], opts: { batchSize: number }): Promise<Generation[]> {
    const out: Generation[] = [];
    for (let i = 0; i < reqs.length; i += opts.batchSize) {
      const batch = reqs.slice(i, i + opts.batchSize);
      // One request per batch needs one limit and stop list; the evaluator batches per task, so they agree.
      const choices = await this.post({
        prompt: batch.map((r) => r.prompt),
        max_tokens: batch[0].maxNewTokens,
        temperature: 0,
        ...(batch[0].stop.length ? { stop: batch[0].stop } : {}),
      }, batch.length);
      for (const c of choices) out.push({ text: c.text, hitLimit: c.finish_reason == null ? undefined : c.finish_reason === 'length' });
    }
    return out;
  }

  async score(reqs: readonly ScoreRequest[], opts: { batchSize: number }): Promise<Score[]> {
    const out: Score[] = [];
    for (let i = 0; i < reqs.length; i += opts.batchSize) {
      const batch = reqs.slice(i, i + opts.batchSize);
      const choices = await this.post({ prompt: batch.map((r) => r.text), max_tokens: 0, echo: true, logprobs: 0, temperature: 0 }, batch.length);
      for (const c of choices) {
        const lps = (c.logprobs?.token_logprobs ?? []).filter((x): x is number => x !== null);
        if (lps.length === 0) throw new UserError(`--endpoint ${this.url}: no prompt logprobs returned (the server must support echo with logprobs)`, { field: 'endpoint' });
        out.push({ nll: -lps.reduce((s, x) => s + x, 0), tokens: lps.length });
      }
    }
    return out;
  }

  dispose(): void {}
}
