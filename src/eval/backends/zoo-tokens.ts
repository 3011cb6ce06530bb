/**
 * Token-level access to a zoo model for `mergelab serve`: per-token log-probabilities of given
 * sequences (echo with logprobs) and step-by-step decoding with a caller's choice of the next
 * token (sampling, greedy with logprobs). Greedy text without logprobs stays on the evaluator's
 * `generate`, so served and built-in greedy outputs come from the same code.
 */
import { causalMask, forward, headDim, inferenceView, ropeTables, ropeTensors, tf, type LayerCache, type ZooConfig } from '../../zoo/model.js';
import { BOS_ID, EOS_ID, PAD_ID } from '../../zoo/tokenizer.js';
import type { ZooModel } from '../../zoo/io.js';
import type { SequenceLogprobs, TokenLevel } from './types.js';

const NEG = -1e9;

/** Indices of the `k` largest entries, largest first (ties: lower id first). */
export function topIds(row: ArrayLike<number>, k: number): number[] {
  const out: number[] = [];
  if (k <= 0) return out;
  for (let i = 0; i < row.length; i++) {
    if (out.length === k && !(row[i] > row[out[k - 1]])) continue;
    let j = out.length < k ? out.push(i) - 1 : k - 1;
    while (j > 0 && row[out[j - 1]] < row[i]) {
      out[j] = out[j - 1];
      j--;
    }
    out[j] = i;
  }
  return out;
}

/** Additive mask [B, 1, Tq, Tk] for left-padded rows: queries at times qStart.., keys 0..Tk-1. */
function paddedMask(pads: number[], qStart: number, Tq: number, Tk: number): tf.Tensor {
  const m = new Float32Array(pads.length * Tq * Tk);
  pads.forEach((pad, b) => {
    for (let i = 0; i < Tq; i++) {
      const row = (b * Tq + i) * Tk;
      for (let j = 0; j < Tk; j++) if (j > qStart + i || j < pad) m[row + j] = NEG;
    }
  });
  return tf.tensor(m, [pads.length, 1, Tq, Tk]);
}

function rope(cfg: ZooConfig, positions: number[], B: number, T: number): { cos: tf.Tensor; sin: tf.Tensor } {
  const { cos, sin } = ropeTables(cfg, positions);
  return { cos: tf.tensor(cos, [B, 1, T, headDim(cfg)]), sin: tf.tensor(sin, [B, 1, T, headDim(cfg)]) };
}

async function logprobsOfBatch(model: ZooModel, seqs: readonly number[][], top: number): Promise<SequenceLogprobs[]> {
  const cfg = model.config;
  const V = cfg.vocabSize;
  const T = Math.max(...seqs.map((s) => s.length));
  const B = seqs.length;
  const ids = new Int32Array(B * T).fill(PAD_ID);
  seqs.forEach((s, b) => ids.set(s, b * T));
  const view = inferenceView(model.weights);
  let lp: Float32Array;
  try {
    // Right padding: causal attention keeps pads from reaching any real position before them.
    lp = tf.tidy(() => {
      const r = ropeTensors(cfg, T);
      const { logits } = forward(cfg, view, { ids: tf.tensor2d(ids, [B, T], 'int32'), cos: r.cos, sin: r.sin, mask: causalMask(T) });
      return tf.logSoftmax(logits, -1).dataSync() as Float32Array;
    });
  } finally {
    view.dispose();
  }
  return seqs.map((s, b) => {
    const out: SequenceLogprobs = { logprobs: [null], top: [null] };
    for (let t = 1; t < s.length; t++) {
      const row = lp.subarray((b * T + t - 1) * V, (b * T + t) * V);
      out.logprobs.push(row[s[t]]);
      out.top.push(top > 0 ? topIds(row, top).map((id) => ({ id, logprob: row[id] })) : []);
    }
    return out;
  });
}

async function decodeBatch(model: ZooModel, seqs: readonly number[][], maxNew: number, pick: (row: number, logprobs: Float32Array) => number, rowOffset: number): Promise<number[][]> {
  const cfg = model.config;
  const B = seqs.length;
  const L = Math.max(...seqs.map((s) => s.length));
  const pads = seqs.map((s) => L - s.length);
  const seq = seqs.map((s, b) => [...new Array<number>(pads[b]).fill(PAD_ID), ...s]);
  const out: number[][] = seqs.map(() => []);
  const done = seqs.map(() => false);
  const view = inferenceView(model.weights);
  let cache: LayerCache[] = [];
  try {
    for (let step = 0; step < maxNew && !done.every(Boolean); step++) {
      const t = L + step;
      const Tq = step === 0 ? t : 1;
      const qStart = t - Tq;
      const ids: number[] = [];
      const pos: number[] = [];
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < Tq; i++) {
          ids.push(seq[b][qStart + i]);
          pos.push(Math.max(0, qStart + i - pads[b]));
        }
      }
      const rows = tf.tidy(() => {
        const r = rope(cfg, pos, B, Tq);
        const res = forward(cfg, view, { ids: tf.tensor2d(ids, [B, Tq], 'int32'), cos: r.cos, sin: r.sin, mask: paddedMask(pads, qStart, Tq, t), cache, lastOnly: true });
        const old = cache;
        cache = res.cache!.map((c) => ({ k: tf.keep(c.k), v: tf.keep(c.v) }));
        for (const c of old) (c.k.dispose(), c.v.dispose());
        return tf.logSoftmax(res.logits, -1).dataSync() as Float32Array;
      });
      for (let b = 0; b < B; b++) {
        // A finished row still needs a token in the batch; pad keeps its cache aligned.
        const next = done[b] ? PAD_ID : pick(rowOffset + b, rows.slice(b * cfg.vocabSize, (b + 1) * cfg.vocabSize));
        seq[b].push(next);
        if (done[b]) continue;
        out[b].push(next);
        if (next === EOS_ID) done[b] = true;
      }
    }
  } finally {
    for (const c of cache) (c.k.dispose(), c.v.dispose());
    view.dispose();
  }
  return out;
}

/** The zoo model's token-level interface (see `TokenLevel`). */
export function zooTokenLevel(model: ZooModel): TokenLevel {
  return {
    vocabSize: model.config.vocabSize,
    contextLength: model.config.maxPositions,
    bosId: BOS_ID,
    eosId: EOS_ID,
    encode: (text) => model.tokenizer.encode(text),
    tokenText: (id) => model.tokenizer.idToString(id),
    async sequenceLogprobs(seqs, opts) {
      const out: SequenceLogprobs[] = [];
      for (let i = 0; i < seqs.length; i += opts.batchSize) out.push(...(await logprobsOfBatch(model, seqs.slice(i, i + opts.batchSize), opts.top)));
      return out;
    },
    async decode(seqs, opts) {
      const out: number[][] = [];
      for (let i = 0; i < seqs.length; i += opts.batchSize) out.push(...(await decodeBatch(model, seqs.slice(i, i + opts.batchSize), opts.maxNewTokens, opts.pick, i)));
      return out;
    },
  };
}
