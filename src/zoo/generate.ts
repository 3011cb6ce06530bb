/**
 * Batched greedy generation with a key-value cache, and text scoring, for zoo models.
 *
 * Prompts of different lengths are left-padded; each row gets its own rotary positions (counted
 * from its first real token) and pad keys are masked, so a row's result does not depend on what
 * else is in its batch.
 */
import { forward, headDim, inferenceView, ropeTables, tf, type LayerCache, type ZooConfig } from './model.js';
import { BOS_ID, EOS_ID, PAD_ID } from './tokenizer.js';
import type { ZooModel } from './io.js';

const NEG = -1e9;

export interface GenerateOptions {
  maxNewTokens: number;
  batchSize?: number;
  /** false recomputes the whole sequence at every step (the reference the cache is tested against). */
  useCache?: boolean;
}

function ropeFor(cfg: ZooConfig, positions: number[], B: number, T: number): { cos: tf.Tensor; sin: tf.Tensor } {
  const { cos, sin } = ropeTables(cfg, positions);
  const hd = headDim(cfg);
  return { cos: tf.tensor(cos, [B, 1, T, hd]), sin: tf.tensor(sin, [B, 1, T, hd]) };
}

/** Additive mask [B, 1, Tq, Tk] for queries at absolute times qStart.. and keys 0..Tk-1. */
function maskFor(pads: number[], qStart: number, Tq: number, Tk: number): tf.Tensor {
  const B = pads.length;
  const m = new Float32Array(B * Tq * Tk);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Tq; i++) {
      const q = qStart + i;
      const row = (b * Tq + i) * Tk;
      for (let j = 0; j < Tk; j++) if (j > q || j < pads[b]) m[row + j] = NEG;
    }
  }
  return tf.tensor(m, [B, 1, Tq, Tk]);
}

function argmaxRows(logits: tf.Tensor): number[] {
  return tf.tidy(() => Array.from(tf.argMax(logits, -1).dataSync()));
}

async function generateBatch(model: ZooModel, prompts: string[], maxNew: number, useCache: boolean): Promise<string[]> {
  const cfg = model.config;
  const tok = model.tokenizer;
  const enc = prompts.map((p) => [BOS_ID, ...tok.encode(p)]);
  const B = enc.length;
  const L = Math.max(...enc.map((e) => e.length));
  const pads = enc.map((e) => L - e.length);
  // seq[b] holds the padded tokens so far (prompt + generated).
  const seq = enc.map((e, b) => [...new Array(pads[b]).fill(PAD_ID), ...e]);
  const out: number[][] = enc.map(() => []);
  const done = enc.map(() => false);
  const view = inferenceView(model.weights);
  let cache: LayerCache[] | undefined;
  try {
    for (let step = 0; step < maxNew; step++) {
      const t = L + step; // number of tokens already in seq
      const full = !useCache || step === 0;
      const Tq = full ? t : 1;
      const qStart = full ? 0 : t - 1;
      const ids: number[] = [];
      const pos: number[] = [];
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < Tq; i++) {
          const time = qStart + i;
          ids.push(seq[b][time]);
          pos.push(Math.max(0, time - pads[b]));
        }
      }
      const next = tf.tidy(() => {
        const rope = ropeFor(cfg, pos, B, Tq);
        const res = forward(cfg, view, {
          ids: tf.tensor2d(ids, [B, Tq], 'int32'),
          cos: rope.cos,
          sin: rope.sin,
          mask: maskFor(pads, qStart, Tq, t),
          cache: useCache ? (cache ?? []) : undefined,
          lastOnly: true,
        });
        if (useCache) {
          const old = cache;
          cache = res.cache!.map((c) => ({ k: tf.keep(c.k), v: tf.keep(c.v) }));
          if (old) for (const c of old) (c.k.dispose(), c.v.dispose());
        }
        return argmaxRows(res.logits);
      });
      for (let b = 0; b < B; b++) {
        seq[b].push(next[b]);
        if (!done[b]) {
          if (next[b] === EOS_ID) done[b] = true;
          else out[b].push(next[b]);
        }
      }
      if (done.every(Boolean)) break;
    }
  } finally {
    if (cache) for (const c of cache) (c.k.dispose(), c.v.dispose());
    view.dispose();
  }
  return out.map((o) => tok.decode(o));
}

/**
 * Greedy continuations of full prompt strings (templates applied; `<bos>` is added here),
 * without the prompt and without `<eos>`.
 */
export async function generateGreedy(model: ZooModel, prompts: string[], opts: GenerateOptions): Promise<string[]> {
  const bs = Math.max(1, opts.batchSize ?? 32);
  const useCache = opts.useCache ?? true;
  // Sorting by length keeps padding (wasted work) small within a batch.
  const order = prompts.map((p, i) => i).sort((a, b) => prompts[a].length - prompts[b].length);
  const res = new Array<string>(prompts.length);
  for (let i = 0; i < order.length; i += bs) {
    const idx = order.slice(i, i + bs);
    const outs = await generateBatch(model, idx.map((k) => prompts[k]), opts.maxNewTokens, useCache);
    idx.forEach((k, j) => (res[k] = outs[j]));
  }
  return res;
}

/** Summed negative log-likelihood (nats) of each text's tokens after `<bos>`. */
export async function scoreText(model: ZooModel, texts: string[], opts: { batchSize?: number } = {}): Promise<Array<{ nll: number; tokens: number }>> {
  const bs = Math.max(1, opts.batchSize ?? 16);
  const cfg = model.config;
  const view = inferenceView(model.weights);
  const res: Array<{ nll: number; tokens: number }> = [];
  try {
    for (let i = 0; i < texts.length; i += bs) {
      const enc = texts.slice(i, i + bs).map((t) => [BOS_ID, ...model.tokenizer.encode(t)]);
      const B = enc.length;
      const L = Math.max(...enc.map((e) => e.length));
      if (L < 2) {
        for (const _ of enc) res.push({ nll: 0, tokens: 0 });
        continue;
      }
      const T = L - 1;
      const ids = new Int32Array(B * T);
      const tgt = new Int32Array(B * T);
      const valid = new Float32Array(B * T);
      enc.forEach((e, b) => {
        for (let j = 0; j < T; j++) {
          ids[b * T + j] = j < e.length ? e[j] : PAD_ID;
          tgt[b * T + j] = j + 1 < e.length ? e[j + 1] : PAD_ID;
          valid[b * T + j] = j + 1 < e.length ? 1 : 0;
        }
      });
      const nll = tf.tidy(() => {
        const pos = Array.from({ length: B * T }, (_, k) => k % T);
        const rope = ropeFor(cfg, pos, B, T);
        const { logits } = forward(cfg, view, { ids: tf.tensor2d(ids, [B, T], 'int32'), cos: rope.cos, sin: rope.sin, mask: maskFor(new Array(B).fill(0), 0, T, T) });
        const logp = tf.logSoftmax(logits, -1);
        const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(tgt, 'int32'), cfg.vocabSize)), -1);
        return tf.neg(tf.sum(tf.reshape(tf.mul(picked, tf.tensor1d(valid)), [B, T]), -1)).dataSync();
      });
      enc.forEach((e, b) => res.push({ nll: nll[b], tokens: e.length - 1 }));
    }
  } finally {
    view.dispose();
  }
  return res;
}
