/** `mergelab serve`'s answers, in process on the committed zoo chat model. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { startServer, type RunningServer } from '../../src/serve/index.js';
import { loadZooModel } from '../../src/zoo/io.js';
import { scoreText } from '../../src/zoo/generate.js';
import { chooseToken } from '../../src/serve/sampling.js';
import { mulberry32 } from '../../src/util/random.js';

const MODEL = path.resolve(__dirname, '../../data/zoo/chat');
let srv: RunningServer;

beforeAll(async () => {
  srv = await startServer(MODEL, { port: 0, host: '127.0.0.1', servedModelName: 'zoo-chat', seed: 7 });
});
afterAll(async () => srv?.stop(1000));

async function post(route: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${srv.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

describe('mergelab serve', () => {
  it('lists the model', async () => {
    const json = (await (await fetch(`${srv.url}/v1/models`)).json()) as any;
    expect(json.data.map((m: { id: string }) => m.id)).toEqual(['zoo-chat']);
    expect(json.data[0].max_model_len).toBe(512);
  });

  it('echo with max_tokens 0 and logprobs 0 answers as vLLM does, and sums to the built-in score', async () => {
    const text = 'Tom had 5 apples. He ate 2.';
    const { json } = await post('/v1/completions', { model: 'zoo-chat', prompt: text, echo: true, max_tokens: 0, logprobs: 0 });
    const lp = json.choices[0].logprobs;
    expect(json.choices[0].text).toBe(text);
    expect(lp.tokens[0]).toBe('<bos>');
    expect(lp.token_logprobs[0]).toBeNull();
    expect(lp.top_logprobs[0]).toBeNull();
    expect(lp.tokens.slice(1).join('')).toBe(text);
    expect(Object.keys(lp.top_logprobs[3])).toEqual([lp.tokens[3]]);
    const m = await loadZooModel(MODEL);
    const [ref] = await scoreText(m, [text]);
    m.dispose();
    const nll = -lp.token_logprobs.slice(1).reduce((s: number, x: number) => s + x, 0);
    expect(lp.token_logprobs.length - 1).toBe(ref.tokens);
    expect(nll).toBeCloseTo(ref.nll, 3);
    const one = (await post('/v1/completions', { prompt: text, echo: true, max_tokens: 0, logprobs: 1 })).json.choices[0].logprobs;
    expect(Object.keys(one.top_logprobs[5]).length).toBeGreaterThanOrEqual(1);
    expect(Object.keys(one.top_logprobs[5]).length).toBeLessThanOrEqual(2);
  });

  it('chat renders the chat template: same greedy answer as the rendered prompt completed', async () => {
    const chat = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'Say wood backwards.' }], temperature: 0, max_tokens: 20 });
    const comp = await post('/v1/completions', { prompt: '<|user|>Say wood backwards.\n<|assistant|>', temperature: 0, max_tokens: 20 });
    expect(chat.json.choices[0].message.content).toBe(comp.json.choices[0].text);
    expect(chat.json.choices[0].message.content).toBe('doow');
    expect(chat.json.choices[0].finish_reason).toBe('stop');
  });

  it('greedy with logprobs (token by token) gives the batched greedy text', async () => {
    const prompt = '<|user|>Write fire 3 times.\n<|assistant|>';
    const a = await post('/v1/completions', { prompt, temperature: 0, max_tokens: 30 });
    const b = await post('/v1/completions', { prompt, temperature: 0, max_tokens: 30, logprobs: 2 });
    expect(b.json.choices[0].text).toBe(a.json.choices[0].text);
    expect(b.json.choices[0].logprobs.tokens.join('')).toBe(b.json.choices[0].text);
    expect(b.json.choices[0].logprobs.token_logprobs.every((x: number) => x <= 0)).toBe(true);
  });

  it('stop sequences cut the text and end with finish_reason stop', async () => {
    const { json } = await post('/v1/completions', { prompt: 'Question: Kim has 2 pens and gets 2 more. How many pens does Kim have?\nAnswer:', temperature: 0, max_tokens: 60, stop: ['pens'] });
    expect(json.choices[0].text).not.toContain('pens');
    expect(json.choices[0].finish_reason).toBe('stop');
  });

  it('sampling is reproducible from its seed, n choices differ in their draws', async () => {
    const body = { prompt: 'The', max_tokens: 12, temperature: 1, seed: 42, n: 3 };
    const a = (await post('/v1/completions', body)).json.choices.map((c: { text: string }) => c.text);
    const b = (await post('/v1/completions', body)).json.choices.map((c: { text: string }) => c.text);
    expect(a).toEqual(b);
    expect(new Set(a).size).toBeGreaterThan(1);
  });

  it('concurrent greedy requests are batched into one generate call', async () => {
    const before = srv.engine.batchSizes.length;
    await Promise.all(['Say sun backwards.', 'Say dog backwards.', 'Say cat backwards.', 'Say wood backwards.'].map((q) => post('/v1/chat/completions', { messages: [{ role: 'user', content: q }], temperature: 0, max_tokens: 8 })));
    expect(Math.max(...srv.engine.batchSizes.slice(before))).toBeGreaterThan(1);
  });

  it('bad requests get OpenAI error JSON with 400/404', async () => {
    const bad = await post('/v1/completions', { prompt: 'x', max_tokens: 'ten', stream: true });
    expect(bad.status).toBe(400);
    expect(bad.json.error.type).toBe('invalid_request_error');
    expect(bad.json.error.message).toMatch(/field "stream": streaming is not supported.*field "max_tokens"/);
    expect((await post('/v1/completions', { prompt: 'x', max_tokens: 600 })).json.error.message).toMatch(/maximum context length is 512 tokens/);
    expect((await post('/v1/completions', { prompt: 'caf\u00e9' })).json.error.message).toMatch(/not in the zoo vocabulary/);
    const nf = await post('/v1/completions', { model: 'other', prompt: 'x' });
    expect([nf.status, nf.json.error.code]).toEqual([404, 'model_not_found']);
    expect((await fetch(`${srv.url}/v2/x`)).status).toBe(404);
    const notJson = await fetch(`${srv.url}/v1/completions`, { method: 'POST', body: '{' });
    expect(notJson.status).toBe(400);
  });
});

describe('sampling', () => {
  it('temperature 0 is argmax; top_k 1 is argmax at any temperature; top_p keeps the nucleus', () => {
    const lp = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
    const r = mulberry32(1);
    expect(chooseToken(lp, { temperature: 0, topP: 1, topK: -1 }, r)).toBe(0);
    for (let i = 0; i < 50; i++) expect(chooseToken(lp, { temperature: 1.5, topP: 1, topK: 1 }, r)).toBe(0);
    for (let i = 0; i < 50; i++) expect(chooseToken(lp, { temperature: 1, topP: 0.7, topK: -1 }, r)).toBeLessThan(2);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[chooseToken(lp, { temperature: 1, topP: 1, topK: -1 }, r)]++;
    expect(counts[0] / 3000).toBeCloseTo(0.5, 1);
    expect(counts[2] / 3000).toBeCloseTo(0.2, 1);
  });
});
