/**
 * The TensorFlow.js backend: the same kernel primitives through tfjs ops, on tfjs-node-gpu (CUDA),
 * tfjs-node, wasm or cpu. It is the path for a GPU machine; on a plain CPU the typed backend wins.
 *
 * - Tensors are processed in chunks of CHUNK elements inside tf.tidy, so the wasm heap (capped at
 *   4 GiB) never holds more than a few chunks.
 * - Signs are taken with comparisons, never tf.sign: on wasm tf.sign returns 0 for |x| < 1.2e-7
 *   where cpu returns +-1, which would silently change TIES results.
 * - Random masks come from rng.ts (not tf.randomUniform), and magnitude selection / della ranks run
 *   on the downloaded float32 deltas with the shared radix selection (tf.topk on cpu takes 70 s and
 *   7 GB for 64M elements). tf.sub is exactly rounded float32 on every backend, so both backends
 *   compute the same deltas and therefore the same masks.
 * - Accumulations are float32 inside a chunk, float64 across chunks: sums differ from the typed
 *   backend in the last bits, masks do not.
 */
import type * as TF from '@tensorflow/tfjs-core';
import { UserError } from '../util/errors.js';
import { dellaMaskFromDelta } from './della.js';
import { fillBernoulli } from './rng.js';
import { rankBandMask as rankBandOnDelta } from './select.js';
import { type HalfDType, narrowRange, widenTail } from './convert.js';
import type {
  CombineResult,
  CombineSpec,
  ConsensusMeanSpec,
  DellaMaskResult,
  Gram,
  Kernels,
  Mask,
  RamStats,
  RngKey,
  VectorGram,
  VectorLayout,
} from './types.js';

type Tf = typeof TF;
export type TfjsBackendName = 'tfjs' | 'tfjs-node-gpu' | 'tfjs-node' | 'tfjs-wasm' | 'tfjs-cpu';

/**
 * Elements per chunk. wasm: 1M (4 MiB per tensor; a combine keeps ~20 live per chunk, and the wasm
 * heap misbehaved well before its 4 GiB cap: out-of-bounds errors with 16M chunks). Native
 * TensorFlow backends: 16M, to amortise the per-op launch cost.
 */
export const WASM_CHUNK = 1 << 20;
export const NATIVE_CHUNK = 16 << 20;

/** Import a module that may be absent without letting TypeScript resolve it. */
async function optionalImport(spec: string): Promise<unknown> {
  try {
    return await import(spec);
  } catch {
    return null;
  }
}

async function tryBackend(which: Exclude<TfjsBackendName, 'tfjs'>): Promise<{ tf: Tf; tfBackend: string } | null> {
  if (which === 'tfjs-node-gpu' || which === 'tfjs-node') {
    const mod = (await optionalImport(which === 'tfjs-node-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node')) as
      | (Tf & { default?: Tf })
      | null;
    if (!mod) return null;
    const tf = (mod.default ?? mod) as Tf;
    try {
      if (!(await tf.setBackend('tensorflow'))) return null;
      await tf.ready();
      return { tf, tfBackend: 'tensorflow' };
    } catch {
      return null;
    }
  }
  const tf = (await import('@tensorflow/tfjs-core')) as Tf;
  const tfBackend = which === 'tfjs-wasm' ? 'wasm' : 'cpu';
  try {
    if (which === 'tfjs-wasm') await import('@tensorflow/tfjs-backend-wasm');
    else await import('@tensorflow/tfjs-backend-cpu');
    if (!(await tf.setBackend(tfBackend))) return null;
    await tf.ready();
    return { tf, tfBackend };
  } catch {
    return null;
  }
}

export async function loadTfjsKernels(
  name: TfjsBackendName,
  opts: { required: boolean; chunk?: number },
): Promise<TfjsKernels | null> {
  const order: Array<Exclude<TfjsBackendName, 'tfjs'>> =
    name === 'tfjs' ? ['tfjs-node-gpu', 'tfjs-node', 'tfjs-wasm', 'tfjs-cpu'] : [name];
  for (const which of order) {
    const got = await tryBackend(which);
    if (got) return new TfjsKernels(got.tf, got.tfBackend, which, opts.chunk ?? (got.tfBackend === 'tensorflow' ? NATIVE_CHUNK : WASM_CHUNK));
  }
  if (opts.required) {
    throw new UserError(
      `backend ${name} is not available here` +
        (name === 'tfjs-node' || name === 'tfjs-node-gpu'
          ? ` (@tensorflow/${name} is an optional dependency: its install downloads libtensorflow${name === 'tfjs-node-gpu' ? ' and it needs CUDA' : ''}); use --backend typed or tfjs-wasm`
          : ''),
      { field: '--backend' },
    );
  }
  return null;
}

export class TfjsKernels implements Kernels {
  constructor(
    private readonly tf: Tf,
    private readonly tfBackend: string,
    readonly name: string,
    readonly chunk: number,
  ) {}

  /** Another module (the zoo) may have switched tfjs's global backend since we loaded. */
  private async ensure(): Promise<void> {
    if (this.tf.getBackend() !== this.tfBackend) {
      await this.tf.setBackend(this.tfBackend);
      await this.tf.ready();
    }
  }

  private *chunks(n: number): Generator<[number, number]> {
    for (let s = 0; s < n; s += this.chunk) yield [s, Math.min(s + this.chunk, n)];
  }

  private t(a: Float32Array, s: number, e: number): TF.Tensor1D {
    const view = a.subarray(s, e);
    // The native bindings are not known to accept views of a SharedArrayBuffer (untested here: no
    // libtensorflow on this machine), so hand them a plain copy; wasm and cpu copy from any view.
    const plain = this.tfBackend === 'tensorflow' && view.buffer instanceof SharedArrayBuffer ? view.slice() : view;
    return this.tf.tensor1d(plain, 'float32');
  }

  private maskT(m: Uint8Array | Float32Array, s: number, e: number): TF.Tensor1D {
    if (m instanceof Float32Array) return this.t(m, s, e);
    const f = new Float32Array(e - s);
    for (let j = s; j < e; j++) f[j - s] = m[j];
    return this.tf.tensor1d(f, 'float32');
  }

  /** Download several scalars with one sync (each dataSync is a round trip on a GPU). */
  private scalars(ts: TF.Tensor[]): Float32Array {
    if (ts.length === 0) return new Float32Array(0);
    return this.tf.stack(ts).dataSync() as Float32Array;
  }

  /** Scalar tensors of one chunk's Gram: l1_i, then dot(i, j) for j >= i. */
  private gramTerms(ds: TF.Tensor[]): TF.Tensor[] {
    const tf = this.tf;
    const out: TF.Tensor[] = ds.map((d) => tf.sum(tf.abs(d)));
    for (let i = 0; i < ds.length; i++) for (let j = i; j < ds.length; j++) out.push(tf.sum(tf.mul(ds[i], ds[j])));
    return out;
  }

  private addGram(vals: Float32Array, at: number, n: number, l1: number[], dot: number[]): void {
    for (let i = 0; i < n; i++) l1[i] += vals[at + i];
    let k = at + n;
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        dot[i * n + j] += vals[k];
        if (j !== i) dot[j * n + i] += vals[k];
        k++;
      }
    }
  }

  async gram(models: Float32Array[], base: Float32Array | null): Promise<Gram> {
    await this.ensure();
    const tf = this.tf;
    const n = models.length;
    const N = base ? base.length : models[0]?.length ?? 0;
    const l1 = new Array<number>(n).fill(0);
    const dot = new Array<number>(n * n).fill(0);
    for (const [s, e] of this.chunks(N)) {
      tf.tidy(() => {
        const b = base ? this.t(base, s, e) : null;
        const ds = models.map((x) => (b ? tf.sub(this.t(x, s, e), b) : this.t(x, s, e)));
        this.addGram(this.scalars(this.gramTerms(ds)), 0, n, l1, dot);
      });
    }
    return { l1, l2sq: l1.map((_, i) => dot[i * n + i]), dot };
  }

  private async delta(x: Float32Array, base: Float32Array): Promise<Float32Array> {
    await this.ensure();
    const tf = this.tf;
    const N = base.length;
    const out = new Float32Array(N);
    for (const [s, e] of this.chunks(N)) {
      tf.tidy(() => {
        out.set(tf.sub(this.t(x, s, e), this.t(base, s, e)).dataSync() as Float32Array, s);
      });
    }
    return out;
  }

  async rankBandMask(x: Float32Array, base: Float32Array, lo: number, hi: number): Promise<Uint8Array> {
    return rankBandOnDelta(await this.delta(x, base), lo, hi);
  }

  async bernoulliMask(key: RngKey, p: number, n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    fillBernoulli(key, p, out, 0);
    return out;
  }

  async dellaMask(
    x: Float32Array,
    base: Float32Array,
    rowLen: number,
    rho: number,
    eps: number,
    key: RngKey,
    inverseProbability: boolean,
  ): Promise<DellaMaskResult> {
    return dellaMaskFromDelta(await this.delta(x, base), rowLen, rho, eps, key, inverseProbability);
  }

  async maskedL1(x: Float32Array, base: Float32Array, mask: Mask): Promise<{ full: number; kept: number; count: number }> {
    await this.ensure();
    const tf = this.tf;
    let full = 0;
    let kept = 0;
    let count = 0;
    for (const [s, e] of this.chunks(base.length)) {
      tf.tidy(() => {
        const a = tf.abs(tf.sub(this.t(x, s, e), this.t(base, s, e)));
        if (mask) {
          const m = this.maskT(mask, s, e);
          const v = this.scalars([tf.sum(a), tf.sum(tf.mul(a, m)), tf.sum(tf.cast(tf.notEqual(m, 0), 'float32'))]);
          full += v[0];
          kept += v[1];
          count += v[2];
        } else {
          const f = this.scalars([tf.sum(a)])[0];
          full += f;
          kept += f;
          count += e - s;
        }
      });
    }
    return { full, kept, count };
  }

  async combine(spec: CombineSpec): Promise<CombineResult> {
    await this.ensure();
    const tf = this.tf;
    const { base, models, masks, coeffs, weights, consensus, normalize, lambda } = spec;
    const gram = spec.gram ?? false;
    const n = models.length;
    const N = base.length;
    const out = new Float32Array(N);
    const wsum = weights.reduce((a, b) => a + b, 0);
    const scalarDiv = Math.abs(wsum) < 1e-8 ? 1 : wsum;
    let conflicts = 0;
    let mergedSq = 0;
    const l1 = new Array<number>(n).fill(0);
    const dot = new Array<number>(n * n).fill(0);
    for (const [s, e] of this.chunks(N)) {
      tf.tidy(() => {
        const b = this.t(base, s, e);
        const ds = models.map((x) => tf.sub(this.t(x, s, e), b));
        const terms: TF.Tensor[] = gram ? this.gramTerms(ds) : [];
        const es = ds.map((d, i) => {
          const m = masks[i];
          const md = m ? tf.mul(d, this.maskT(m, s, e)) : d;
          return tf.mul(md, coeffs[i]);
        });
        const sum = n === 1 ? es[0] : tf.addN(es);
        const pos = es.map((x) => tf.greater(x, 0));
        const neg = es.map((x) => tf.less(x, 0));
        if (n > 1) {
          const anyPos = pos.reduce((a, x) => tf.logicalOr(a, x));
          const anyNeg = neg.reduce((a, x) => tf.logicalOr(a, x));
          terms.push(tf.sum(tf.cast(tf.logicalAnd(anyPos, anyNeg), 'float32')));
        }
        let r: TF.Tensor;
        if (consensus) {
          // Elected sign + when sum >= 0; a zero e_i matches neither sign.
          const up = tf.greaterEqual(sum, 0);
          const down = tf.logicalNot(up);
          // Boolean algebra rather than tf.where on bool tensors: the wasm heap was corrupted while this used
          // tf.where (with 16M chunks; not isolated further).
          const matches = es.map((_, i) => tf.cast(tf.logicalOr(tf.logicalAnd(up, pos[i]), tf.logicalAnd(down, neg[i])), 'float32'));
          const mixed = tf.addN(es.map((x, i) => tf.mul(x, matches[i])));
          if (normalize) {
            const div0 = tf.addN(matches.map((m, i) => tf.mul(m, weights[i])));
            // An exact 0 divisor becomes 1 (adding the 0/1 flag keeps tf.where out, see above).
            const div = tf.add(div0, tf.cast(tf.equal(div0, 0), 'float32'));
            r = tf.div(mixed, div);
          } else {
            r = mixed;
          }
        } else {
          r = normalize ? tf.div(sum, scalarDiv) : sum;
        }
        if (lambda !== 1) r = tf.mul(r, lambda);
        terms.push(tf.sum(tf.square(r)));
        const v = this.scalars(terms);
        if (gram) this.addGram(v, 0, n, l1, dot);
        if (n > 1) conflicts += v[v.length - 2];
        mergedSq += v[v.length - 1];
        out.set(tf.add(b, r).dataSync() as Float32Array, s);
      });
    }
    return {
      out,
      signConflicts: conflicts,
      mergedDeltaL2sq: mergedSq,
      gram: gram ? { l1, l2sq: l1.map((_, i) => dot[i * n + i]), dot } : null,
    };
  }

  async weightedSum(arrays: Float32Array[], coeffs: number[]): Promise<Float32Array> {
    await this.ensure();
    const tf = this.tf;
    const N = arrays[0].length;
    const out = new Float32Array(N);
    for (const [s, e] of this.chunks(N)) {
      tf.tidy(() => {
        const terms = arrays.map((a, i) => tf.mul(this.t(a, s, e), coeffs[i]));
        out.set((terms.length === 1 ? terms[0] : tf.addN(terms)).dataSync() as Float32Array, s);
      });
    }
    return out;
  }

  /** Whole rows of `cols` elements per chunk (at least one row, however long). */
  private *rowChunks(rows: number, cols: number): Generator<[number, number]> {
    const per = Math.max(1, Math.floor(this.chunk / Math.max(cols, 1)));
    for (let r = 0; r < rows; r += per) yield [r, Math.min(r + per, rows)];
  }

  private sumAll(ts: TF.Tensor[]): TF.Tensor {
    return ts.length === 1 ? ts[0] : this.tf.addN(ts);
  }

  async vectorGram(a: Float32Array, b: Float32Array, base: Float32Array | null, layout: VectorLayout): Promise<VectorGram> {
    await this.ensure();
    const tf = this.tf;
    const { rows, cols, along } = layout;
    if (rows * cols !== a.length) throw new RangeError(`vector layout ${rows} x ${cols} does not cover ${a.length} elements`);
    const nv = along === 'rows' ? rows : cols;
    const dot = new Float64Array(nv);
    const aa = new Float64Array(nv);
    const bb = new Float64Array(nv);
    for (const [r0, r1] of this.rowChunks(rows, cols)) {
      tf.tidy(() => {
        const s = r0 * cols;
        const e = r1 * cols;
        const z = base ? this.t(base, s, e) : null;
        const va = tf.reshape(z ? tf.sub(this.t(a, s, e), z) : this.t(a, s, e), [r1 - r0, cols]);
        const vb = tf.reshape(z ? tf.sub(this.t(b, s, e), z) : this.t(b, s, e), [r1 - r0, cols]);
        const axis = along === 'rows' ? 1 : 0;
        const m = along === 'rows' ? r1 - r0 : cols;
        const v = tf.concat([tf.sum(tf.mul(va, vb), axis), tf.sum(tf.square(va), axis), tf.sum(tf.square(vb), axis)]).dataSync() as Float32Array;
        const at = along === 'rows' ? r0 : 0;
        for (let i = 0; i < m; i++) {
          dot[at + i] += v[i];
          aa[at + i] += v[m + i];
          bb[at + i] += v[2 * m + i];
        }
      });
    }
    return { dot, aa, bb };
  }

  async vectorLerp(a: Float32Array, b: Float32Array, base: Float32Array | null, layout: VectorLayout, c0: Float64Array, c1: Float64Array): Promise<Float32Array> {
    await this.ensure();
    const tf = this.tf;
    const { rows, cols, along } = layout;
    if (rows * cols !== a.length) throw new RangeError(`vector layout ${rows} x ${cols} does not cover ${a.length} elements`);
    const out = new Float32Array(a.length);
    for (const [r0, r1] of this.rowChunks(rows, cols)) {
      tf.tidy(() => {
        const s = r0 * cols;
        const e = r1 * cols;
        const k = r1 - r0;
        const coeff = (c: Float64Array) =>
          along === 'rows' ? tf.tensor2d(Float32Array.from(c.subarray(r0, r1)), [k, 1]) : tf.tensor2d(Float32Array.from(c), [1, cols]);
        const z = base ? tf.reshape(this.t(base, s, e), [k, cols]) : null;
        const va = tf.reshape(this.t(a, s, e), [k, cols]);
        const vb = tf.reshape(this.t(b, s, e), [k, cols]);
        const mixed = tf.add(tf.mul(coeff(c0), z ? tf.sub(va, z) : va), tf.mul(coeff(c1), z ? tf.sub(vb, z) : vb));
        out.set((z ? tf.add(z, mixed) : mixed).dataSync() as Float32Array, s);
      });
    }
    return out;
  }

  async nearswap(base: Float32Array, x: Float32Array, t: number): Promise<Float32Array> {
    await this.ensure();
    const tf = this.tf;
    const out = new Float32Array(base.length);
    for (const [s, e] of this.chunks(base.length)) {
      tf.tidy(() => {
        const b = this.t(base, s, e);
        const v = this.t(x, s, e);
        const w = tf.clipByValue(tf.div(t, tf.maximum(tf.abs(tf.sub(b, v)), 1e-6)), 0, 1);
        out.set(tf.add(tf.mul(w, v), tf.mul(tf.sub(1, w), b)).dataSync() as Float32Array, s);
      });
    }
    return out;
  }

  async deltaVariance(models: Float32Array[], base: Float32Array): Promise<Float32Array> {
    await this.ensure();
    const tf = this.tf;
    const n = models.length;
    const out = new Float32Array(base.length);
    for (const [s, e] of this.chunks(base.length)) {
      tf.tidy(() => {
        const b = this.t(base, s, e);
        const ds = models.map((x) => tf.sub(this.t(x, s, e), b));
        const mean = tf.div(this.sumAll(ds), n);
        out.set(tf.div(this.sumAll(ds.map((d) => tf.square(tf.sub(d, mean)))), n).dataSync() as Float32Array, s);
      });
    }
    return out;
  }

  async maskedSumSq(models: Float32Array[], base: Float32Array, mask: Uint8Array | null): Promise<number[]> {
    await this.ensure();
    const tf = this.tf;
    const sums = new Array<number>(models.length).fill(0);
    for (const [s, e] of this.chunks(base.length)) {
      tf.tidy(() => {
        const b = this.t(base, s, e);
        const m = mask ? this.maskT(mask, s, e) : null;
        const v = this.scalars(models.map((x) => {
          const d = tf.sub(this.t(x, s, e), b);
          return tf.sum(tf.square(m ? tf.mul(d, m) : d));
        }));
        for (let i = 0; i < sums.length; i++) sums[i] += v[i];
      });
    }
    return sums;
  }

  async consensusMean(spec: ConsensusMeanSpec): Promise<Float32Array> {
    await this.ensure();
    const tf = this.tf;
    const { base, models, mask, coeffs, minDivisor } = spec;
    const out = new Float32Array(base.length);
    for (const [s, e] of this.chunks(base.length)) {
      tf.tidy(() => {
        const b = this.t(base, s, e);
        const m = mask ? this.maskT(mask, s, e) : null;
        const es = models.map((x) => {
          const d = tf.sub(this.t(x, s, e), b);
          return m ? tf.mul(d, m) : d;
        });
        const up = tf.greaterEqual(this.sumAll(es), 0);
        const down = tf.logicalNot(up);
        // Comparisons, never tf.sign (see the file comment); boolean algebra instead of tf.where.
        const match = es.map((x) => tf.cast(tf.logicalOr(tf.logicalAnd(up, tf.greater(x, 0)), tf.logicalAnd(down, tf.less(x, 0))), 'float32'));
        const num = this.sumAll(es.map((x, i) => tf.mul(tf.mul(x, match[i]), coeffs[i])));
        const den = tf.maximum(this.sumAll(match.map((x, i) => tf.mul(x, coeffs[i]))), minDivisor);
        out.set(tf.add(b, tf.div(num, den)).dataSync() as Float32Array, s);
      });
    }
    return out;
  }

  /** Per model 0/1 "changed" flags and the count of changing models, for one chunk (inside a tidy). */
  private ramFlags(models: Float32Array[], base: Float32Array, epsilon: number, s: number, e: number) {
    const tf = this.tf;
    const b = this.t(base, s, e);
    const ds = models.map((x) => tf.sub(this.t(x, s, e), b));
    const nz = ds.map((d) => tf.cast(tf.greater(tf.abs(d), epsilon), 'float32'));
    const count = this.sumAll(nz);
    return { b, ds, nz, count, one: tf.cast(tf.equal(count, 1), 'float32'), many: tf.cast(tf.greater(count, 1), 'float32') };
  }

  async ramStats(models: Float32Array[], base: Float32Array, epsilon: number): Promise<RamStats> {
    await this.ensure();
    const tf = this.tf;
    const n = models.length;
    const active = new Array<number>(n).fill(0);
    const unique = new Array<number>(n).fill(0);
    const shared = new Array<number>(n).fill(0);
    for (const [s, e] of this.chunks(base.length)) {
      tf.tidy(() => {
        const f = this.ramFlags(models, base, epsilon, s, e);
        const v = this.scalars(f.nz.flatMap((z) => [tf.sum(z), tf.sum(tf.mul(z, f.one)), tf.sum(tf.mul(z, f.many))]));
        for (let i = 0; i < n; i++) {
          active[i] += v[3 * i];
          unique[i] += v[3 * i + 1];
          shared[i] += v[3 * i + 2];
        }
      });
    }
    return { active, unique, shared };
  }

  async ramCombine(models: Float32Array[], base: Float32Array, epsilon: number, uniqueScale: number[]): Promise<Float32Array> {
    await this.ensure();
    const tf = this.tf;
    const out = new Float32Array(base.length);
    for (const [s, e] of this.chunks(base.length)) {
      tf.tidy(() => {
        const f = this.ramFlags(models, base, epsilon, s, e);
        const shareFactor = tf.div(f.many, tf.maximum(f.count, 1));
        const terms = f.ds.map((d, i) => tf.mul(tf.mul(d, f.nz[i]), tf.add(tf.mul(f.one, uniqueScale[i]), shareFactor)));
        out.set(tf.add(f.b, this.sumAll(terms)).dataSync() as Float32Array, s);
      });
    }
    return out;
  }

  async fusionImportance(x: Float32Array, base: Float32Array, rowLen: number): Promise<Float32Array> {
    await this.ensure();
    const tf = this.tf;
    const N = base.length;
    if (!(rowLen >= 1 && N % rowLen === 0)) throw new RangeError(`fusionImportance: ${N} elements are not rows of ${rowLen}`);
    const out = new Float32Array(N);
    for (const [r0, r1] of this.rowChunks(N / rowLen, rowLen)) {
      tf.tidy(() => {
        const s = r0 * rowLen;
        const e = r1 * rowLen;
        const xr = tf.reshape(this.t(x, s, e), [r1 - r0, rowLen]);
        const br = tf.reshape(this.t(base, s, e), [r1 - r0, rowLen]);
        const p = tf.add(tf.softmax(xr), 1e-8);
        const q = tf.add(tf.softmax(br), 1e-8);
        const kl = tf.maximum(tf.sum(tf.mul(p, tf.log(tf.div(p, q))), 1, true), 0);
        out.set(tf.mul(tf.abs(tf.sub(xr, br)), kl).dataSync() as Float32Array, s);
      });
    }
    return out;
  }

  async thresholdMerge(x: Float32Array, base: Float32Array, score: Float32Array, threshold: number): Promise<{ out: Float32Array; kept: number }> {
    await this.ensure();
    const tf = this.tf;
    const out = new Float32Array(base.length);
    let kept = 0;
    for (const [s, e] of this.chunks(base.length)) {
      tf.tidy(() => {
        const b = this.t(base, s, e);
        const m = tf.cast(tf.greaterEqual(this.t(score, s, e), threshold), 'float32');
        kept += this.scalars([tf.sum(m)])[0];
        out.set(tf.add(b, tf.mul(tf.sub(this.t(x, s, e), b), m)).dataSync() as Float32Array, s);
      });
    }
    return { out, kept };
  }

  // tfjs has no bfloat16 dtype, so checkpoint conversions stay on the host for this backend.
  async widen16(dtype: HalfDType, buf: Float32Array): Promise<void> {
    widenTail(dtype, buf, buf.length, buf.length);
  }

  async narrow16(dtype: HalfDType, src: Float32Array, dst: Uint16Array): Promise<void> {
    if (dst.length !== src.length) throw new RangeError(`narrow16: length ${dst.length}, expected ${src.length}`);
    narrowRange(dtype, src, dst, 0, src.length);
  }

  async dispose(): Promise<void> {
    // Chunks are freed by tf.tidy as they go; the backend itself is shared with other modules.
  }
}
