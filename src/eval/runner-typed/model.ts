/**
 * The zoo's Llama forward pass on the wasm kernels (kernels.wat), for inference only.
 *
 * Same arithmetic as src/zoo/model.ts on the tfjs wasm backend, operation for operation, so a
 * logit here has the same bits as the reference's (test/eval/fast-runner.test.ts proves it on the
 * eval sets). What it does not repeat is the reference's waste: pad tokens, rows that already
 * ended, the masked half of causal attention, and the copies (transposes, tiles, concats) tfjs
 * needs around every op. Rows are independent sequences; a row's `pad` is the left padding it
 * had in the reference's batch, which fixes where its keys fall in the softmax lanes and the
 * 48-key blocks of the reference's sums (see kernels.wat).
 *
 * All the arithmetic is in the kernels, a layer in ten calls; JavaScript only lays out the
 * tokens of a call (embeddings and a table of where each token's keys go). Buffers are reserved
 * once per job (`reserve`) and reused by every call.
 */
// Types only: worker threads load this file, and the zoo's model.ts would bring all of tfjs with it.
import type { ZooConfig } from '../../zoo/model.js';
import { KernelArena, type Buf } from './wasm.js';

const up = (n: number, m: number) => Math.ceil(n / m) * m;
const headDim = (cfg: ZooConfig) => cfg.hiddenSize / cfg.numHeads;
/** i32 words per token in the kernels' token table (see `attention` in kernels.wat). */
const TAB = 8;

/** Rotary cos/sin for positions 0..maxPositions-1, [position][hd] (the zoo's `ropeTables`, made by the caller). */
export interface RopeTables { cos: Float32Array; sin: Float32Array }

/** Which configs the kernels cover; anything else runs on the reference path. */
export function fastRunnerUnsupported(cfg: ZooConfig): string | null {
  const hd = headDim(cfg);
  if (!Number.isInteger(hd) || hd % 8 !== 0) return `head dimension ${hd} is not a multiple of 8`;
  if (cfg.numHeads % cfg.numKvHeads !== 0) return `${cfg.numHeads} attention heads do not split into ${cfg.numKvHeads} kv heads`;
  if (cfg.intermediateSize % 4 !== 0) return `intermediate_size ${cfg.intermediateSize} is not a multiple of 4`;
  return null;
}

interface Layer { ln1: Buf; ln2: Buf; qkv: Buf; o: Buf; gu: Buf; down: Buf }

/** [out, in] (HF) into the kernels' panels [ld/8][in][8] at output column offset col. */
function putPacked(dst: Float32Array, inn: number, col: number, src: Float32Array, out: number): void {
  for (let o = 0; o < out; o++) {
    const c = col + o;
    const base = (c >> 3) * inn * 8 + (c & 7);
    for (let i = 0; i < inn; i++) dst[base + i * 8] = src[o * inn + i];
  }
}

/** A sequence being decoded: its tokens so far and its key/value cache in padded positions. */
export class RowState {
  /** Real tokens fed so far (prompt, then generated). */
  len = 0;
  constructor(
    public pad: number,
    /** Capacity in padded positions (a multiple of 16, as the attention kernel reads keys 16 at a time). */
    readonly cap: number,
    /** Per layer: keys transposed [kvHeads][hd][cap], then values [kvHeads][cap][hd]; `layerBytes` apart. */
    readonly kv: Buf,
    readonly layerBytes: number,
  ) {}
}

export interface FeedRow {
  row: RowState;
  ids: ArrayLike<number>;
  /** Length of the reference's softmax row for these tokens: their batch's padded length. */
  tk: number;
  /** 'last' logits of the last fed token only, 'all' of every fed token. */
  logits: 'last' | 'all';
}

/** Buffers of one job, for calls of up to `tokens` tokens into rows of capacity up to `cap`. */
interface Scratch {
  tokens: number;
  cap: number;
  X: Buf; H: Buf; QKV: Buf; ATT: Buf; O: Buf; GU: Buf; ACT: Buf; PK: Buf; SC: Buf; HN: Buf; LG: Buf; TAB: Buf;
}

export class FastModel {
  readonly cfg: ZooConfig;
  readonly hd: number;
  /** Row stride of the logits `feed` returns (the vocabulary rounded up to 8). */
  readonly ldV: number;
  private readonly arena: KernelArena;
  private readonly embed: Float32Array;
  private readonly layers: Layer[] = [];
  private readonly normF: Buf;
  private readonly head: Buf;
  private readonly ldQkv: number;
  private readonly ldD: number;
  private readonly ldGu: number;
  private readonly ldFf: number;
  private readonly eps: number;
  private readonly scale: number;
  private readonly cos: Buf;
  private readonly sin: Buf;
  private scratch?: Scratch;
  /** Arena position before the scratch: releasing to it or below frees the scratch. */
  private scratchMark = -1;

  constructor(cfg: ZooConfig, arrays: Map<string, Float32Array>, rope: RopeTables, arena = new KernelArena()) {
    const why = fastRunnerUnsupported(cfg);
    if (why) throw new Error(`fast runner: ${why}`);
    this.cfg = cfg;
    this.arena = arena;
    const d = cfg.hiddenSize;
    const hd = (this.hd = headDim(cfg));
    const kv = cfg.numKvHeads * hd;
    const ff = cfg.intermediateSize;
    const need = (n: string) => {
      const a = arrays.get(n);
      if (!a) throw new Error(`fast runner: tensor ${n} is missing`);
      return a;
    };
    this.ldQkv = up(d + 2 * kv, 8);
    this.ldD = up(d, 8);
    this.ldGu = up(2 * ff, 8);
    this.ldFf = up(ff, 8);
    this.ldV = up(cfg.vocabSize, 8);
    this.eps = Math.fround(cfg.rmsNormEps);
    this.scale = Math.fround(1 / Math.sqrt(hd));
    this.embed = need('model.embed_tokens.weight');
    const vec = (src: Float32Array) => {
      const b = arena.alloc(src.length);
      b.f.set(src);
      return b;
    };
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `model.layers.${l}.`;
      this.layers.push({
        ln1: vec(need(p + 'input_layernorm.weight')),
        ln2: vec(need(p + 'post_attention_layernorm.weight')),
        qkv: arena.alloc(d * this.ldQkv),
        o: arena.alloc(d * this.ldD),
        gu: arena.alloc(d * this.ldGu),
        down: arena.alloc(ff * this.ldD),
      });
    }
    this.head = arena.alloc(d * this.ldV);
    this.normF = vec(need('model.norm.weight'));
    if (rope.cos.length !== cfg.maxPositions * hd || rope.sin.length !== cfg.maxPositions * hd) throw new Error('fast runner: rotary tables do not match the config');
    this.cos = vec(rope.cos);
    this.sin = vec(rope.sin);
    // Views after the last allocation (growth replaces them).
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const L = this.layers[l];
      // q, k and v share one matmul (and gate and up another): each output column is summed on
      // its own, so fusing them changes no bits.
      putPacked(L.qkv.f, d, 0, need(p + 'self_attn.q_proj.weight'), d);
      putPacked(L.qkv.f, d, d, need(p + 'self_attn.k_proj.weight'), kv);
      putPacked(L.qkv.f, d, d + kv, need(p + 'self_attn.v_proj.weight'), kv);
      putPacked(L.o.f, d, 0, need(p + 'self_attn.o_proj.weight'), d);
      putPacked(L.gu.f, d, 0, need(p + 'mlp.gate_proj.weight'), ff);
      putPacked(L.gu.f, d, ff, need(p + 'mlp.up_proj.weight'), ff);
      putPacked(L.down.f, ff, 0, need(p + 'mlp.down_proj.weight'), d);
    }
    putPacked(this.head.f, d, 0, need('lm_head.weight'), cfg.vocabSize);
  }

  /** Arena position to release a job's buffers (scratch and row caches) back to. */
  mark(): number {
    return this.arena.mark();
  }

  release(mark: number): void {
    this.arena.release(mark);
    if (mark <= this.scratchMark) this.scratch = undefined;
  }

  /** Reserves the buffers for calls of up to `tokens` tokens into rows of capacity up to `cap` (a `newRow`'s). */
  reserve(tokens: number, cap: number): void {
    const a = this.arena;
    const cfg = this.cfg;
    const d = cfg.hiddenSize;
    const M = up(tokens, 4);
    this.scratchMark = a.mark();
    this.scratch = {
      tokens,
      cap,
      X: a.alloc(M * d),
      H: a.alloc(M * d),
      QKV: a.alloc(M * this.ldQkv),
      ATT: a.alloc(M * d),
      O: a.alloc(M * this.ldD),
      GU: a.alloc(M * this.ldGu),
      ACT: a.alloc(M * this.ldFf),
      PK: a.alloc(M * Math.max(d, this.ldFf)),
      SC: a.alloc(2 * cap + this.hd + 8),
      HN: a.alloc(M * d),
      LG: a.alloc(M * this.ldV),
      TAB: a.alloc(tokens * TAB),
    };
  }

  /** Padded capacity a row needs to hold `len` real tokens after `pad` padded positions. */
  capFor(pad: number, len: number): number {
    return up(pad + len, 16);
  }

  /** A row of capacity `cap` (from `capFor`); `reset` makes it a new sequence with its own padding. */
  newRow(cap: number, pad = 0): RowState {
    if (cap % 16 !== 0) throw new Error(`fast runner: row capacity ${cap} is not a multiple of 16`);
    const perLayer = 2 * this.cfg.numKvHeads * this.hd * cap;
    return new RowState(pad, cap, this.arena.alloc(perLayer * this.cfg.numLayers), perLayer * 4);
  }

  reset(row: RowState, pad: number): void {
    row.pad = pad;
    row.len = 0;
  }

  /**
   * Feeds tokens to rows (a prompt, or one new token each) and returns the requested logits:
   * a view of rows of `ldV` floats (the first `vocabSize` of each are the logits), in feed order,
   * valid until the next call. Rows keep their caches for the next call.
   */
  feed(feeds: readonly FeedRow[]): Float32Array {
    const cfg = this.cfg;
    const s = this.scratch;
    if (!s) throw new Error('fast runner: feed before reserve');
    const d = cfg.hiddenSize;
    const hd = this.hd;
    const k = this.arena.k;
    let M = 0;
    let nOut = 0;
    for (const fr of feeds) {
      M += fr.ids.length;
      nOut += fr.logits === 'all' ? fr.ids.length : 1;
      if (fr.row.cap > s.cap) throw new Error(`fast runner: row capacity ${fr.row.cap} exceeds the reserved ${s.cap}`);
      if (fr.row.pad + fr.row.len + fr.ids.length > fr.row.cap) throw new Error('fast runner: row is full');
      if (fr.row.len + fr.ids.length > cfg.maxPositions) throw new Error(`fast runner: ${fr.row.len + fr.ids.length} tokens exceed max_position_embeddings ${cfg.maxPositions}`);
    }
    if (M > s.tokens) throw new Error(`fast runner: ${M} tokens exceed the reserved ${s.tokens}`);
    if (M === 0) return s.LG.f.subarray(0, 0);
    const x = s.X.f;
    const tab = s.TAB.i;
    let r = 0;
    for (const fr of feeds) {
      const row = fr.row;
      for (let i = 0; i < fr.ids.length; i++, r++) {
        const id = fr.ids[i];
        x.set(this.embed.subarray(id * d, id * d + d), r * d);
        const o = r * TAB;
        tab[o] = row.kv.off;
        tab[o + 1] = row.cap;
        tab[o + 2] = row.pad;
        tab[o + 3] = row.pad + row.len + i;
        tab[o + 4] = row.len + i;
        tab[o + 5] = fr.tk;
        tab[o + 6] = row.layerBytes;
      }
    }
    const ff = cfg.intermediateSize;
    for (let l = 0; l < cfg.numLayers; l++) {
      const L = this.layers[l];
      k.rmsnorm(s.X.off, d, s.H.off, d, M, L.ln1.off, d, this.eps);
      k.fc(s.H.off, d, L.qkv.off, s.QKV.off, this.ldQkv, M, d, this.ldQkv, s.PK.off);
      k.attention(s.QKV.off, this.ldQkv, s.TAB.off, M, l, cfg.numHeads, cfg.numKvHeads, hd, this.cos.off, this.sin.off, s.SC.off, s.ATT.off, d, this.scale);
      k.fc(s.ATT.off, d, L.o.off, s.O.off, this.ldD, M, d, this.ldD, s.PK.off);
      k.add(s.X.off, s.O.off, this.ldD, M, d);
      k.rmsnorm(s.X.off, d, s.H.off, d, M, L.ln2.off, d, this.eps);
      k.fc(s.H.off, d, L.gu.off, s.GU.off, this.ldGu, M, d, this.ldGu, s.PK.off);
      k.swiglu(s.GU.off, this.ldGu, s.ACT.off, this.ldFf, M, ff);
      k.fc(s.ACT.off, this.ldFf, L.down.off, s.O.off, this.ldD, M, ff, this.ldD, s.PK.off);
      k.add(s.X.off, s.O.off, this.ldD, M, d);
    }
    // Final norm and lm_head only where logits are wanted (the reference slices first too).
    let j = 0;
    r = 0;
    for (const fr of feeds) {
      const n = fr.ids.length;
      if (fr.logits === 'all') {
        k.rmsnorm(s.X.off + r * d * 4, d, s.HN.off + j * d * 4, d, n, this.normF.off, d, this.eps);
        j += n;
      } else {
        k.rmsnorm(s.X.off + (r + n - 1) * d * 4, d, s.HN.off + j * d * 4, d, 1, this.normF.off, d, this.eps);
        j += 1;
      }
      r += n;
      fr.row.len += n;
    }
    k.fc(s.HN.off, d, this.head.off, s.LG.off, this.ldV, nOut, d, this.ldV, s.PK.off);
    return s.LG.f.subarray(0, nOut * this.ldV);
  }
}

/** First index of the largest of v[off..off+n), as tf.argMax picks on ties. */
export function argmax(v: ArrayLike<number>, off = 0, n = v.length - off): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[off + i] > v[off + best]) best = i;
  return best;
}
