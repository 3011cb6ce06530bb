/**
 * Checks the tfjs forward pass against a plain-array transcription of transformers'
 * modeling_llama (RMSNorm, rotate_half rotary, repeat_kv, SwiGLU, x @ W.T with W [out, in]),
 * so zoo checkpoints mean what a real Llama checkpoint means.
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { initBackend, initWeights, inferenceView, forward, ropeTensors, causalMask, tf, type ZooConfig } from '../../src/zoo/model.js';

const cfg: ZooConfig = { vocabSize: 101, hiddenSize: 16, intermediateSize: 20, numLayers: 2, numHeads: 4, numKvHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositions: 32 };
type Mat = number[][];

const linear = (x: Mat, w: Float32Array, out: number, inp: number): Mat => x.map((row) => Array.from({ length: out }, (_, o) => row.reduce((s, v, i) => s + v * w[o * inp + i], 0)));
const rms = (x: Mat, w: Float32Array): Mat => x.map((r) => {
  const ms = r.reduce((s, v) => s + v * v, 0) / r.length;
  return r.map((v, i) => (v / Math.sqrt(ms + cfg.rmsNormEps)) * w[i]);
});

function reference(W: Map<string, { data: Float32Array }>, ids: number[]): Mat {
  const d = cfg.hiddenSize;
  const H = cfg.numHeads;
  const KVH = cfg.numKvHeads;
  const hd = d / H;
  const T = ids.length;
  const g = (n: string) => W.get(n)!.data;
  let x: Mat = ids.map((id) => Array.from(g('model.embed_tokens.weight').slice(id * d, id * d + d)));
  // HF LlamaRotaryEmbedding: emb = cat(freqs, freqs); q*cos + rotate_half(q)*sin, rotate_half(x) = cat(-x2, x1).
  const invFreq = Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(cfg.ropeTheta, (2 * i) / hd));
  const rot = (v: number[], p: number) => v.map((val, j) => {
    const f = invFreq[j % (hd / 2)] * p;
    const rh = j < hd / 2 ? -v[j + hd / 2] : v[j - hd / 2];
    return val * Math.cos(f) + rh * Math.sin(f);
  });
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const h = rms(x, g(p + 'input_layernorm.weight'));
    const q = linear(h, g(p + 'self_attn.q_proj.weight'), d, d);
    const k = linear(h, g(p + 'self_attn.k_proj.weight'), KVH * hd, d);
    const v = linear(h, g(p + 'self_attn.v_proj.weight'), KVH * hd, d);
    const att: Mat = Array.from({ length: T }, () => new Array(d).fill(0));
    for (let head = 0; head < H; head++) {
      const kvh = Math.floor(head / (H / KVH)); // repeat_kv
      const qs = q.map((r, t) => rot(r.slice(head * hd, head * hd + hd), t));
      const ks = k.map((r, t) => rot(r.slice(kvh * hd, kvh * hd + hd), t));
      const vs = v.map((r) => r.slice(kvh * hd, kvh * hd + hd));
      for (let t = 0; t < T; t++) {
        const sc = ks.slice(0, t + 1).map((kk) => kk.reduce((s, val, j) => s + val * qs[t][j], 0) / Math.sqrt(hd));
        const mx = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j < hd; j++) att[t][head * hd + j] = e.reduce((s, w, u) => s + (w / z) * vs[u][j], 0);
      }
    }
    const o = linear(att, g(p + 'self_attn.o_proj.weight'), d, d);
    x = x.map((r, t) => r.map((val, j) => val + o[t][j]));
    const h2 = rms(x, g(p + 'post_attention_layernorm.weight'));
    const gate = linear(h2, g(p + 'mlp.gate_proj.weight'), cfg.intermediateSize, d);
    const up = linear(h2, g(p + 'mlp.up_proj.weight'), cfg.intermediateSize, d);
    const act = gate.map((r, t) => r.map((gv, j) => (gv / (1 + Math.exp(-gv))) * up[t][j]));
    const down = linear(act, g(p + 'mlp.down_proj.weight'), d, cfg.intermediateSize);
    x = x.map((r, t) => r.map((val, j) => val + down[t][j]));
  }
  return linear(rms(x, g('model.norm.weight')), g('lm_head.weight'), cfg.vocabSize, d);
}

describe('zoo model vs transformers Llama semantics', () => {
  beforeAll(async () => {
    await initBackend();
  });
  it('matches a plain transcription of modeling_llama', () => {
    const init = initWeights(cfg, 11);
    // Non-trivial norm gains so a swapped or missing norm weight would show.
    for (const [n, t] of init) if (t.shape.length === 1) t.data.forEach((_, i) => (t.data[i] = 0.5 + ((i * 37 + n.length) % 11) / 10));
    const ids = [1, 40, 41, 5, 77, 12, 90, 33, 8];
    const ref = reference(init, ids);
    const w = new Map([...init].map(([n, { shape, data }]) => [n, tf.tensor(data, shape)]));
    const view = inferenceView(w);
    const got = tf.tidy(() => {
      const r = ropeTensors(cfg, ids.length);
      return forward(cfg, view, { ids: tf.tensor2d([ids], [1, ids.length], 'int32'), cos: r.cos, sin: r.sin, mask: causalMask(ids.length) }).logits.arraySync() as number[][];
    });
    view.dispose();
    let maxErr = 0;
    for (let t = 0; t < ids.length; t++) for (let j = 0; j < cfg.vocabSize; j++) maxErr = Math.max(maxErr, Math.abs(got[t][j] - ref[t][j]));
    expect(maxErr).toBeLessThan(1e-3);
  });
});
