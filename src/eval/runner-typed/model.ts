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
 */
// Types only: worker threads load this file, and the zoo's model.ts would bring all of tfjs with it.
import type { ZooConfig } from '../../zoo/model.js';
import { KernelArena, type Buf } from './wasm.js';

const f32 = Math.fround;
const up8 = (n: number) => (n + 7) & ~7;
const headDim = (cfg: ZooConfig) => cfg.hiddenSize / cfg.numHeads;

/** Rotary cos/sin for positions 0..maxPositions-1, [position][hd] (the zoo's `ropeTables`, made by the caller). */
export interface RopeTables { cos: Float32Array; sin: Float32Array }

/** Which configs the kernels cover; anything else runs on the reference path. */
export function fastRunnerUnsupported(cfg: ZooConfig): string | null {
  const hd = headDim(cfg);
  if (hd % 4 !== 0) return `head dimension ${hd} is not a multiple of 4`;
  if (cfg.intermediateSize % 4 !== 0) return `intermediate_size ${cfg.intermediateSize} is not a multiple of 4`;
  return null;
}

interface Layer { ln1: Float32Array; ln2: Float32Array; qkv: Buf; o: Buf; gu: Buf; down: Buf }

/** [out, in] (HF) into [in][ld] at column offset col. */
function putTransposed(dst: Float32Array, ld: number, col: number, src: Float32Array, out: number, inn: number): void {
  for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) dst[i * ld + col + o] = src[o * inn + i];
}

/** A sequence being decoded: its tokens so far and its key/value cache in padded positions. */
export class RowState {
  /** Real tokens fed so far (prompt, then generated). */
  len = 0;
  constructor(
    readonly pad: number,
    /** Capacity in padded positions (a multiple of 4, with room for the kernels' 4-key groups). */
    readonly cap: number,
    /** Per layer: keys transposed [kvHeads][hd][cap], values [kvHeads][cap][hd]. */
    readonly kt: Buf[],
    readonly v: Buf[],
  ) {}
}

export interface FeedRow {
  row: RowState;
  ids: ArrayLike<number>;
  /** Length of the reference's softmax row for this feed: the batch's padded length. */
  tk: (i: number) => number;
  /** 'last' logits of the last fed token only, 'all' of every fed token. */
  logits: 'last' | 'all';
}

export class FastModel {
  readonly cfg: ZooConfig;
  readonly hd: number;
  private readonly arena: KernelArena;
  private readonly embed: Float32Array;
  private readonly layers: Layer[] = [];
  private readonly normF: Float32Array;
  private readonly head: Buf;
  private readonly ldQkv: number;
  private readonly ldD: number;
  private readonly ldGu: number;
  private readonly ldFf: number;
  readonly ldV: number;
  private readonly eps: number;
  private readonly scale: number;
  private readonly cos: Float32Array;
  private readonly sin: Float32Array;

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
    this.ldQkv = up8(d + 2 * kv);
    this.ldD = up8(d);
    this.ldGu = up8(2 * ff);
    this.ldFf = up8(ff);
    this.ldV = up8(cfg.vocabSize);
    this.eps = f32(cfg.rmsNormEps);
    this.scale = f32(1 / Math.sqrt(hd));
    this.embed = need('model.embed_tokens.weight');
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const qkv = arena.alloc(d * this.ldQkv);
      const o = arena.alloc(d * this.ldD);
      const gu = arena.alloc(d * this.ldGu);
      const down = arena.alloc(ff * this.ldD);
      this.layers.push({ ln1: need(p + 'input_layernorm.weight'), ln2: need(p + 'post_attention_layernorm.weight'), qkv, o, gu, down });
    }
    this.head = arena.alloc(d * this.ldV);
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const L = this.layers[l];
      // q, k and v share one matmul (and gate and up another): each output column is summed on
      // its own, so fusing them changes no bits.
      putTransposed(L.qkv.f, this.ldQkv, 0, need(p + 'self_attn.q_proj.weight'), d, d);
      putTransposed(L.qkv.f, this.ldQkv, d, need(p + 'self_attn.k_proj.weight'), kv, d);
      putTransposed(L.qkv.f, this.ldQkv, d + kv, need(p + 'self_attn.v_proj.weight'), kv, d);
      putTransposed(L.o.f, this.ldD, 0, need(p + 'self_attn.o_proj.weight'), d, d);
      putTransposed(L.gu.f, this.ldGu, 0, need(p + 'mlp.gate_proj.weight'), ff, d);
      putTransposed(L.gu.f, this.ldGu, ff, need(p + 'mlp.up_proj.weight'), ff, d);
      putTransposed(L.down.f, this.ldD, 0, need(p + 'mlp.down_proj.weight'), d, ff);
    }
    putTransposed(this.head.f, this.ldV, 0, need('lm_head.weight'), cfg.vocabSize, d);
    this.normF = need('model.norm.weight');
    if (rope.cos.length !== cfg.maxPositions * hd || rope.sin.length !== cfg.maxPositions * hd) throw new Error('fast runner: rotary tables do not match the config');
    this.cos = rope.cos;
    this.sin = rope.sin;
  }

  /** Arena position to release per-call buffers (row caches included) back to. */
  mark(): number {
    return this.arena.mark();
  }

  release(mark: number): void {
    this.arena.release(mark);
  }

  /** A row that will hold at most `maxLen` real tokens after `pad` padded positions. */
  newRow(pad: number, maxLen: number): RowState {
    if (maxLen > this.cfg.maxPositions) throw new Error(`fast runner: ${maxLen} tokens exceed max_position_embeddings ${this.cfg.maxPositions}`);
    const cap = ((pad + maxLen + 3) & ~3) + 4;
    const n = this.cfg.numKvHeads * this.hd * cap;
    const kt: Buf[] = [];
    const v: Buf[] = [];
    for (let l = 0; l < this.cfg.numLayers; l++) (kt.push(this.arena.alloc(n)), v.push(this.arena.alloc(n)));
    return new RowState(pad, cap, kt, v);
  }

  /** y = rmsNorm(x) * w row by row, as tfjs-wasm computes it (sequential f32 sum, then divide). */
  private rmsNorm(x: Float32Array, ldx: number, y: Float32Array, ldy: number, rows: number, w: Float32Array): void {
    const d = this.cfg.hiddenSize;
    for (let r = 0; r < rows; r++) {
      const xo = r * ldx;
      let s = 0;
      for (let i = 0; i < d; i++) s = f32(s + f32(x[xo + i] * x[xo + i]));
      const inv = f32(1 / f32(Math.sqrt(f32(f32(s / d) + this.eps))));
      const yo = r * ldy;
      for (let i = 0; i < d; i++) y[yo + i] = f32(f32(x[xo + i] * inv) * w[i]);
    }
  }

  /** HF rotate_half rotary embedding in place on `heads` heads starting at x[off]. */
  private rope(x: Float32Array, off: number, heads: number, pos: number): void {
    const hd = this.hd;
    const half = hd >> 1;
    const tab = pos * hd;
    for (let h = 0; h < heads; h++) {
      const o = off + h * hd;
      for (let i = 0; i < half; i++) {
        const a = x[o + i];
        const b = x[o + i + half];
        x[o + i] = f32(f32(a * this.cos[tab + i]) + f32(-b * this.sin[tab + i]));
        x[o + i + half] = f32(f32(b * this.cos[tab + i + half]) + f32(a * this.sin[tab + i + half]));
      }
    }
  }

  /**
   * Feeds tokens to rows (a prompt, or one new token each) and returns the requested logits,
   * [rows of logits][vocab] in feed order. Rows keep their caches for the next call.
   */
  feed(feeds: readonly FeedRow[]): Float32Array[] {
    const cfg = this.cfg;
    const d = cfg.hiddenSize;
    const hd = this.hd;
    const H = cfg.numHeads;
    const KVH = cfg.numKvHeads;
    const rep = H / KVH;
    const kv = KVH * hd;
    const ff = cfg.intermediateSize;
    const M = feeds.reduce((s, f) => s + f.ids.length, 0);
    const a = this.arena;
    const k = a.k;
    const m0 = a.mark();
    try {
      const X = a.alloc(M * d);
      const Hb = a.alloc(M * d);
      const QKV = a.alloc(M * this.ldQkv);
      const ATT = a.alloc(M * d);
      const O = a.alloc(M * this.ldD);
      const GU = a.alloc(M * this.ldGu);
      const ACT = a.alloc(M * this.ldFf);
      const maxCap = Math.max(...feeds.map((f) => f.row.cap));
      const SC = a.alloc(maxCap + 8);
      const nOut = feeds.reduce((s, f) => s + (f.logits === 'all' ? f.ids.length : 1), 0);
      const HN = a.alloc(nOut * d);
      const LG = a.alloc(nOut * this.ldV);
      // Views are taken after the last allocation: growing memory replaces the buffer.
      const x = X.f;
      let r = 0;
      for (const fr of feeds) for (let i = 0; i < fr.ids.length; i++, r++) x.set(this.embed.subarray(fr.ids[i] * d, fr.ids[i] * d + d), r * d);
      for (let l = 0; l < cfg.numLayers; l++) {
        const L = this.layers[l];
        this.rmsNorm(x, d, Hb.f, d, M, L.ln1);
        k.fc(Hb.off, d, L.qkv.off, this.ldQkv, QKV.off, this.ldQkv, M, d, this.ldQkv);
        const qkv = QKV.f;
        r = 0;
        for (const fr of feeds) {
          const row = fr.row;
          const kt = row.kt[l].f;
          const vv = row.v[l].f;
          for (let i = 0; i < fr.ids.length; i++, r++) {
            const pos = row.len + i;
            const t = row.pad + pos;
            const ro = r * this.ldQkv;
            this.rope(qkv, ro, H, pos);
            this.rope(qkv, ro + d, KVH, pos);
            for (let g = 0; g < KVH; g++) {
              const base = g * hd * row.cap;
              for (let e = 0; e < hd; e++) kt[base + e * row.cap + t] = qkv[ro + d + g * hd + e];
              vv.set(qkv.subarray(ro + d + kv + g * hd, ro + d + kv + g * hd + hd), base + t * hd);
            }
          }
        }
        r = 0;
        for (const fr of feeds) {
          const row = fr.row;
          for (let i = 0; i < fr.ids.length; i++, r++) {
            const t = row.pad + row.len + i;
            for (let h = 0; h < H; h++) {
              const g = Math.floor(h / rep);
              const kvOff = g * hd * row.cap * 4;
              k.attend(QKV.off + (r * this.ldQkv + h * hd) * 4, row.kt[l].off + kvOff, row.cap, row.v[l].off + kvOff, SC.off, ATT.off + (r * d + h * hd) * 4, row.pad, t, fr.tk(i), this.scale, hd);
            }
          }
        }
        k.fc(ATT.off, d, L.o.off, this.ldD, O.off, this.ldD, M, d, this.ldD);
        const o = O.f;
        for (let rr = 0; rr < M; rr++) for (let i = 0; i < d; i++) x[rr * d + i] = f32(x[rr * d + i] + o[rr * this.ldD + i]);
        this.rmsNorm(x, d, Hb.f, d, M, L.ln2);
        k.fc(Hb.off, d, L.gu.off, this.ldGu, GU.off, this.ldGu, M, d, this.ldGu);
        k.swiglu(GU.off, this.ldGu, ACT.off, this.ldFf, M, ff);
        k.fc(ACT.off, ff, L.down.off, this.ldD, O.off, this.ldD, M, ff, this.ldD);
        for (let rr = 0; rr < M; rr++) for (let i = 0; i < d; i++) x[rr * d + i] = f32(x[rr * d + i] + o[rr * this.ldD + i]);
      }
      // Final norm and lm_head only where logits are wanted (the reference slices first too).
      const hn = HN.f;
      let j = 0;
      r = 0;
      for (const fr of feeds) {
        const n = fr.ids.length;
        if (fr.logits === 'all') {
          this.rmsNorm(x.subarray(r * d), d, hn.subarray(j * d), d, n, this.normF);
          j += n;
        } else {
          this.rmsNorm(x.subarray((r + n - 1) * d), d, hn.subarray(j * d), d, 1, this.normF);
          j += 1;
        }
        r += n;
        fr.row.len += n;
      }
      k.fc(HN.off, d, this.head.off, this.ldV, LG.off, this.ldV, nOut, d, this.ldV);
      const lg = LG.f;
      const V = cfg.vocabSize;
      const out: Float32Array[] = [];
      for (let i = 0; i < nOut; i++) out.push(lg.slice(i * this.ldV, i * this.ldV + V));
      return out;
    } finally {
      a.release(m0);
    }
  }
}

/** First index of the largest value, as tf.argMax picks on ties. */
export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}
