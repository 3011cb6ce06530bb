/**
 * Decoder-only Llama in TensorFlow.js (functional tfjs-core API).
 *
 * Weights live in a Map under Hugging Face tensor names and in HF's [out, in] layout, so a zoo
 * checkpoint is byte-for-byte what the merge engine would see in a real Llama folder. Rotary
 * embedding follows HF's `rotate_half` convention (the two halves of each head dimension form the
 * rotated pairs), so q/k weights mean the same thing they mean in transformers.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerAllGradients } from './tfGradients.js';
import { mulberry32 } from '../util/random.js';

registerAllGradients();

export { tf };

export interface ZooConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
}

export type Weights = Map<string, tf.Tensor>;

let backendReady: Promise<string> | undefined;

/**
 * Selects the wasm backend (4x-25x faster than cpu here, see DEVELOPERS.md), falling back to cpu.
 * MERGELAB_TF_BACKEND=cpu forces the fallback.
 */
export function initBackend(): Promise<string> {
  backendReady ??= (async () => {
    const want = process.env.MERGELAB_TF_BACKEND ?? 'wasm';
    let ok = false;
    if (want === 'wasm') {
      try {
        ok = await tf.setBackend('wasm');
      } catch {
        ok = false;
      }
    }
    if (!ok) await tf.setBackend('cpu');
    await tf.ready();
    return tf.getBackend();
  })();
  return backendReady;
}

export function headDim(cfg: ZooConfig): number {
  return cfg.hiddenSize / cfg.numHeads;
}

/** Every tensor of the model with its HF shape, in HF order. */
export function tensorShapes(cfg: ZooConfig): Array<[string, number[]]> {
  const d = cfg.hiddenSize;
  const hd = headDim(cfg);
  const kv = cfg.numKvHeads * hd;
  const out: Array<[string, number[]]> = [['model.embed_tokens.weight', [cfg.vocabSize, d]]];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [p + 'input_layernorm.weight', [d]],
      [p + 'self_attn.q_proj.weight', [d, d]],
      [p + 'self_attn.k_proj.weight', [kv, d]],
      [p + 'self_attn.v_proj.weight', [kv, d]],
      [p + 'self_attn.o_proj.weight', [d, d]],
      [p + 'post_attention_layernorm.weight', [d]],
      [p + 'mlp.gate_proj.weight', [cfg.intermediateSize, d]],
      [p + 'mlp.up_proj.weight', [cfg.intermediateSize, d]],
      [p + 'mlp.down_proj.weight', [d, cfg.intermediateSize]],
    );
  }
  out.push(['model.norm.weight', [d]], ['lm_head.weight', [cfg.vocabSize, d]]);
  return out;
}

export function parameterCount(cfg: ZooConfig): number {
  return tensorShapes(cfg).reduce((s, [, sh]) => s + sh.reduce((a, b) => a * b, 1), 0);
}

/** All zoo randomness goes through this seeded generator, so a seed fixes the weights. */
export const rng = mulberry32;

/** n Gaussian draws (Box-Muller, both outputs used) with standard deviation std. */
export function normals(n: number, std: number, rand: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/**
 * Seeded initialisation as plain arrays. Projections get std 1/sqrt(fan_in); the two projections
 * that write into the residual stream are further scaled by 1/sqrt(2 * layers) (GPT-2's rule) so
 * the residual does not grow with depth.
 */
export function initWeights(cfg: ZooConfig, seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  const rand = rng(seed);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of tensorShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (shape.length === 1) data = new Float32Array(n).fill(1);
    else if (name === 'model.embed_tokens.weight') data = normals(n, 0.5, rand);
    else {
      let std = 1 / Math.sqrt(shape[1]);
      if (name.endsWith('o_proj.weight') || name.endsWith('down_proj.weight')) std /= Math.sqrt(2 * cfg.numLayers);
      data = normals(n, std, rand);
    }
    out.set(name, { shape, data });
  }
  return out;
}

function swapLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(t, perm);
}

/**
 * matMul whose gradient transposes explicitly: wasm's transposed BatchMatMul (what the built-in
 * gradient uses) runs at 1-2 GFLOP/s, and this is 4x faster end to end (DEVELOPERS.md).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const mm: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved;
      return [tf.matMul(dy as tf.Tensor2D, swapLast(sb) as tf.Tensor2D), tf.matMul(swapLast(sa) as tf.Tensor2D, dy as tf.Tensor2D)];
    },
  };
}) as any) as any;

/**
 * How the forward pass reads weights. Training transposes the [out, in] variables inside the
 * gradient tape; inference reads transposes cached once.
 */
export interface WeightView {
  get(name: string): tf.Tensor;
  /** The [in, out] transpose of a projection weight. */
  t(name: string): tf.Tensor;
  training: boolean;
}

export function trainingView(w: Weights): WeightView {
  return { get: (n) => need(w, n), t: (n) => tf.transpose(need(w, n)), training: true };
}

/** Inference view; call dispose() on it when done to free the cached transposes. */
export function inferenceView(w: Weights): WeightView & { dispose(): void } {
  const cache = new Map<string, tf.Tensor>();
  return {
    get: (n) => need(w, n),
    t: (n) => {
      let c = cache.get(n);
      if (!c) {
        c = tf.keep(tf.transpose(need(w, n)));
        cache.set(n, c);
      }
      return c;
    },
    training: false,
    dispose: () => {
      for (const c of cache.values()) c.dispose();
      cache.clear();
    },
  };
}

function need(w: Weights, n: string): tf.Tensor {
  const t = w.get(n);
  if (!t) throw new Error(`zoo model: tensor ${n} is missing`);
  return t;
}

function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
}

function rotateHalf(x: tf.Tensor): tf.Tensor {
  const hd = x.shape[x.shape.length - 1];
  const [x1, x2] = tf.split(x, [hd / 2, hd / 2], -1);
  return tf.concat([tf.neg(x2), x1], -1);
}

/** HF rotary tables: cos/sin of pos * inv_freq, the frequency list repeated for both halves. Shape [rows, hd]. */
export function ropeTables(cfg: ZooConfig, positions: ArrayLike<number>): { cos: Float32Array; sin: Float32Array } {
  const hd = headDim(cfg);
  const half = hd / 2;
  const cos = new Float32Array(positions.length * hd);
  const sin = new Float32Array(positions.length * hd);
  for (let r = 0; r < positions.length; r++) {
    for (let i = 0; i < half; i++) {
      const invFreq = 1 / Math.pow(cfg.ropeTheta, (2 * i) / hd);
      const a = positions[r] * invFreq;
      cos[r * hd + i] = cos[r * hd + i + half] = Math.cos(a);
      sin[r * hd + i] = sin[r * hd + i + half] = Math.sin(a);
    }
  }
  return { cos, sin };
}

export interface LayerCache {
  k: tf.Tensor; // [B, KVH, Tpast, hd], after rotary
  v: tf.Tensor; // [B, KVH, Tpast, hd]
}

export interface ForwardArgs {
  /** Token ids [B, T]. */
  ids: tf.Tensor;
  /** Rotary tables broadcastable to [B, 1, T, hd]. */
  cos: tf.Tensor;
  sin: tf.Tensor;
  /** Additive attention mask broadcastable to [B, 1, T, Tpast + T]. */
  mask: tf.Tensor;
  cache?: LayerCache[];
  /** Only compute logits for the last position (generation). */
  lastOnly?: boolean;
}

/**
 * One forward pass. Returns logits [B*T, V] (or [B, V] with lastOnly) and, when a cache was
 * given or requested (cache: []), the extended per-layer cache.
 */
export function forward(cfg: ZooConfig, w: WeightView, a: ForwardArgs): { logits: tf.Tensor; cache?: LayerCache[] } {
  const [B, T] = a.ids.shape as [number, number];
  const d = cfg.hiddenSize;
  const H = cfg.numHeads;
  const KVH = cfg.numKvHeads;
  const hd = headDim(cfg);
  const rep = H / KVH;
  const flatIds = tf.reshape(a.ids, [B * T]);
  let x: tf.Tensor = w.training
    ? mm(tf.oneHot(tf.cast(flatIds, 'int32'), cfg.vocabSize), w.get('model.embed_tokens.weight'))
    : tf.gather(w.get('model.embed_tokens.weight'), tf.cast(flatIds, 'int32'));
  const newCache: LayerCache[] | undefined = a.cache ? [] : undefined;
  const scale = 1 / Math.sqrt(hd);
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const h = rmsNorm(x, w.get(p + 'input_layernorm.weight'), cfg.rmsNormEps);
    const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, hd]), [0, 2, 1, 3]);
    const rope = (t: tf.Tensor) => tf.add(tf.mul(t, a.cos), tf.mul(rotateHalf(t), a.sin));
    const q = rope(heads(mm(h, w.t(p + 'self_attn.q_proj.weight')), H));
    let k = rope(heads(mm(h, w.t(p + 'self_attn.k_proj.weight')), KVH));
    let v = heads(mm(h, w.t(p + 'self_attn.v_proj.weight')), KVH);
    if (a.cache && newCache) {
      const past = a.cache[l];
      if (past) {
        k = tf.concat([past.k, k], 2);
        v = tf.concat([past.v, v], 2);
      }
      newCache.push({ k, v });
    }
    const Tk = k.shape[2] as number;
    // HF repeat_kv: kv head i serves query heads i*rep .. i*rep+rep-1.
    const expand = (t: tf.Tensor) => (rep === 1 ? t : tf.reshape(tf.tile(tf.reshape(t, [B * KVH, 1, Tk * hd]), [1, rep, 1]), [B, H, Tk, hd]));
    const kf = tf.reshape(expand(k), [B * H, Tk, hd]);
    const vf = tf.reshape(expand(v), [B * H, Tk, hd]);
    let scores = tf.mul(mm(tf.reshape(q, [B * H, T, hd]), swapLast(kf)), scale);
    scores = tf.add(tf.reshape(scores, [B, H, T, Tk]), a.mask);
    const probs = tf.reshape(tf.softmax(scores, -1), [B * H, T, Tk]);
    const att = tf.reshape(tf.transpose(tf.reshape(mm(probs, vf), [B, H, T, hd]), [0, 2, 1, 3]), [B * T, d]);
    x = tf.add(x, mm(att, w.t(p + 'self_attn.o_proj.weight')));
    const h2 = rmsNorm(x, w.get(p + 'post_attention_layernorm.weight'), cfg.rmsNormEps);
    const gate = mm(h2, w.t(p + 'mlp.gate_proj.weight'));
    const up = mm(h2, w.t(p + 'mlp.up_proj.weight'));
    const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up); // SiLU(gate) * up
    x = tf.add(x, mm(act, w.t(p + 'mlp.down_proj.weight')));
  }
  if (a.lastOnly) x = tf.reshape(tf.slice(tf.reshape(x, [B, T, d]), [0, T - 1, 0], [B, 1, d]), [B, d]);
  x = rmsNorm(x, w.get('model.norm.weight'), cfg.rmsNormEps);
  const logits = mm(x, w.t('lm_head.weight'));
  return { logits, cache: newCache };
}

const NEG = -1e9;

/** Causal additive mask [1, 1, T, T] for training and full-sequence scoring. */
export function causalMask(T: number): tf.Tensor {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = NEG;
  return tf.tensor(m, [1, 1, T, T]);
}

/** Rotary tables for positions 0..T-1 shaped [1, 1, T, hd]. */
export function ropeTensors(cfg: ZooConfig, T: number): { cos: tf.Tensor; sin: tf.Tensor } {
  const pos = Array.from({ length: T }, (_, i) => i);
  const { cos, sin } = ropeTables(cfg, pos);
  const hd = headDim(cfg);
  return { cos: tf.tensor(cos, [1, 1, T, hd]), sin: tf.tensor(sin, [1, 1, T, hd]) };
}

/**
 * Mean cross-entropy over positions where lossMask is 1. ids/targets [B, T] int32, lossMask [B*T].
 * `softTargets` ([S*T, V], optional) replaces the one-hot targets of the batch's last S rows with
 * a distribution (a teacher's next-token probabilities).
 */
export function lossFn(cfg: ZooConfig, w: WeightView, ids: tf.Tensor, targets: tf.Tensor, lossMask: tf.Tensor, rope: { cos: tf.Tensor; sin: tf.Tensor }, mask: tf.Tensor, softTargets?: tf.Tensor): tf.Scalar {
  const { logits } = forward(cfg, w, { ids, cos: rope.cos, sin: rope.sin, mask });
  const logp = tf.logSoftmax(logits, -1);
  const flatT = tf.reshape(targets, [-1]);
  let dist = tf.oneHot(tf.cast(flatT, 'int32'), cfg.vocabSize);
  if (softTargets) {
    const hard = (flatT.shape[0] as number) - (softTargets.shape[0] as number);
    dist = tf.concat([tf.slice(dist, [0, 0], [hard, cfg.vocabSize]), softTargets], 0);
  }
  const nll = tf.neg(tf.sum(tf.mul(logp, dist), -1));
  return tf.div(tf.sum(tf.mul(nll, lossMask)), tf.maximum(tf.sum(lossMask), 1)) as tf.Scalar;
}
