/**
 * The fast runner's kernels against the tfjs-wasm ops they stand in for: every output bit-equal,
 * on shapes and values chosen to reach each code path (row and column remainders, sigmoid's
 * cutoffs and sign, softmax tails, keys crossing 48-key blocks, left padding, pairs of queries).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { assembleKernels, binaryModuleSource, BINARY_MODULE } from '../../src/eval/runner-typed/assemble.js';
import { KernelArena } from '../../src/eval/runner-typed/wasm.js';
import { mulberry32 } from '../../src/util/random.js';
import { claimOrder, sequentialClaim, stopSettled } from '../../src/eval/runner-typed/run.js';
import { planGeneration, planScoring } from '../../src/eval/runner-typed/plan.js';
import { cutAtStop } from '../../src/eval/backends/types.js';

const rand = mulberry32(2025);
const rnd = (n: number, s = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * s);
const bitsDiffer = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
};

async function wasmBackend(): Promise<void> {
  if (tf.getBackend() !== 'wasm') expect(await tf.setBackend('wasm')).toBe(true);
  await tf.ready();
}

describe('fast runner kernels', () => {
  it('the committed kernelsBinary.ts is what kernels.wat assembles to', async () => {
    expect(readFileSync(BINARY_MODULE, 'utf8')).toBe(binaryModuleSource(await assembleKernels()));
  });

  it('fc equals tf.matMul (XNNPACK) bit for bit', async () => {
    await wasmBackend();
    const ar = new KernelArena();
    for (const [M, K, N] of [[1, 128, 101], [3, 7, 8], [7, 128, 256], [41, 384, 128], [13, 128, 768], [4, 5, 16]]) {
      const ldw = (N + 7) & ~7;
      const Mp = (M + 3) & ~3;
      const a = rnd(M * K, 2);
      const w = rnd(K * N, 0.3);
      const ref = tf.tidy(() => tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(w, [K, N])).dataSync());
      const A = ar.alloc(M * K);
      const W = ar.alloc(K * ldw);
      const O = ar.alloc(Mp * ldw);
      const P = ar.alloc(Mp * K);
      A.f.set(a);
      // panels of 8 output columns, [ldw / 8][K][8]
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) W.f[(n >> 3) * K * 8 + k * 8 + (n & 7)] = w[k * N + n];
      ar.k.fc(A.off, K, W.off, O.off, ldw, M, K, ldw, P.off);
      const got = new Float32Array(M * N);
      for (let m = 0; m < M; m++) got.set(O.f.subarray(m * ldw, m * ldw + N), m * N);
      expect(bitsDiffer(got, ref), `fc ${M}x${K}x${N}`).toBe(0);
    }
  });

  it('rmsnorm and add equal the reference tf ops (mean of squares, rsqrt, products; add) bit for bit', async () => {
    await wasmBackend();
    const ar = new KernelArena();
    const d = 128;
    const eps = 1e-5;
    for (const rows of [1, 3, 4, 6, 9]) {
      const x = rnd(rows * d, 3);
      const o = rnd(rows * d, 2);
      const w = rnd(d, 1.5);
      const ref = tf.tidy(() => {
        const X = tf.add(tf.tensor2d(x, [rows, d]), tf.tensor2d(o, [rows, d]));
        const ms = tf.mean(tf.square(X), -1, true);
        return [X.dataSync(), tf.mul(tf.mul(X, tf.rsqrt(tf.add(ms, eps))), tf.tensor1d(w)).dataSync()];
      });
      const X = ar.alloc(rows * d);
      const O = ar.alloc(rows * 136);
      const W = ar.alloc(d);
      const Y = ar.alloc(rows * d);
      X.f.set(x);
      for (let r = 0; r < rows; r++) O.f.set(o.subarray(r * d, (r + 1) * d), r * 136);
      W.f.set(w);
      ar.k.add(X.off, O.off, 136, rows, d);
      ar.k.rmsnorm(X.off, d, Y.off, d, rows, W.off, d, eps);
      expect(bitsDiffer(X.f, ref[0]), `add, ${rows} rows`).toBe(0);
      expect(bitsDiffer(Y.f, ref[1]), `rmsnorm, ${rows} rows`).toBe(0);
    }
  });

  it('swiglu equals tf.mul(tf.mul(g, tf.sigmoid(g)), u) bit for bit, cutoffs included', async () => {
    await wasmBackend();
    const ar = new KernelArena();
    const rows = 7;
    const ff = 384;
    const g = rnd(rows * ff, 12);
    g.set([0, -0, 87.3, -87.3, 88, -88, 100, -100, 1e-8, -1e-8, 0.5, -0.5], 0);
    const u = rnd(rows * ff, 3);
    const ref = tf.tidy(() => {
      const G = tf.tensor2d(g, [rows, ff]);
      return tf.mul(tf.mul(G, tf.sigmoid(G)), tf.tensor2d(u, [rows, ff])).dataSync();
    });
    const GU = ar.alloc(rows * 2 * ff);
    const O = ar.alloc(rows * ff);
    for (let r = 0; r < rows; r++) {
      GU.f.set(g.subarray(r * ff, (r + 1) * ff), r * 2 * ff);
      GU.f.set(u.subarray(r * ff, (r + 1) * ff), r * 2 * ff + ff);
    }
    ar.k.swiglu(GU.off, 2 * ff, O.off, ff, rows, ff);
    expect(bitsDiffer(O.f, ref)).toBe(0);
  });

  it('attend equals the reference attention (batched matmuls, mask, XNNPACK softmax) over padded positions', async () => {
    await wasmBackend();
    const ar = new KernelArena();
    // Head dims: the zoo's, and one that leaves a remainder after the 16-dim passes.
    for (const [hd, Tk] of [5, 50, 97, 130].flatMap((t) => [[32, t], [24, t]])) {
      const scale = 1 / Math.sqrt(hd);
      // Rows of one left-padded batch; lengths put keys across 48-key blocks and every Tk mod 4.
      const pads = [0, 1, 3, Math.min(49, Tk - 1)];
      const B = pads.length;
      const q = rnd(B * Tk * hd, 2);
      const kk = rnd(B * Tk * hd, 2);
      const v = rnd(B * Tk * hd);
      const mask = new Float32Array(B * Tk * Tk);
      for (let b = 0; b < B; b++) for (let i = 0; i < Tk; i++) for (let j = 0; j < Tk; j++) if (j > i || j < pads[b]) mask[(b * Tk + i) * Tk + j] = -1e9;
      const reference = (qs: Float32Array) =>
        tf.tidy(() => {
          const Q = tf.tensor3d(qs, [B, Tk, hd]);
          const Kt = tf.transpose(tf.tensor3d(kk, [B, Tk, hd]), [0, 2, 1]);
          const s = tf.add(tf.mul(tf.matMul(Q, Kt as tf.Tensor3D), scale), tf.tensor3d(mask, [B, Tk, Tk]));
          return tf.matMul(tf.softmax(s, -1) as tf.Tensor3D, tf.tensor3d(v, [B, Tk, hd])).dataSync();
        });
      const ref = reference(q);
      // The queries one row later (the last one repeated) at each row's position: the second of each pair below.
      const next = new Float32Array(q.length);
      for (let b = 0; b < B; b++) for (let i = 0; i < Tk; i++) next.set(q.subarray((b * Tk + Math.min(i + 1, Tk - 1)) * hd, (b * Tk + Math.min(i + 1, Tk - 1) + 1) * hd), (b * Tk + i) * hd);
      const ref2 = reference(next);
      const cap = (Tk + 15) & ~15;
      const KT = ar.alloc(hd * cap);
      const V = ar.alloc(cap * hd);
      const Q = ar.alloc(2 * hd);
      const SC = ar.alloc(2 * cap + hd + 8);
      const O = ar.alloc(2 * hd);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < Tk; j++) for (let d = 0; d < hd; d++) KT.f[d * cap + j] = kk[(b * Tk + j) * hd + d];
        V.f.set(v.subarray(b * Tk * hd, (b + 1) * Tk * hd));
        for (let i = pads[b]; i < Tk; i++) {
          // A pair of queries: this one and the next row's (or itself, asked alone, at the last).
          const i2 = Math.min(i + 1, Tk - 1);
          Q.f.set(q.subarray((b * Tk + i) * hd, (b * Tk + i + 1) * hd));
          Q.f.set(q.subarray((b * Tk + i2) * hd, (b * Tk + i2 + 1) * hd), hd);
          const alone = i2 === i;
          ar.k.attend(Q.off, alone ? Q.off : Q.off + 4 * hd, KT.off, cap, V.off, SC.off, O.off, alone ? O.off : O.off + 4 * hd, pads[b], i, Tk, scale, hd);
          expect(bitsDiffer(O.f.subarray(0, hd), ref.subarray((b * Tk + i) * hd, (b * Tk + i + 1) * hd)), `hd ${hd} Tk ${Tk} pad ${pads[b]} query ${i}`).toBe(0);
          if (alone) continue;
          expect(bitsDiffer(O.f.subarray(hd, 2 * hd), ref2.subarray((b * Tk + i) * hd, (b * Tk + i + 1) * hd)), `hd ${hd} Tk ${Tk} pad ${pads[b]} query ${i2} at ${i}, the second of a pair`).toBe(0);
        }
      }
    }
  });
});

describe('fast runner planning', () => {
  it('a settled stop string cuts where cutting the whole generation would', () => {
    const stops = ['\n\n', 'Question:'];
    const full = 'x = 4.\n#### 4\n\nQuestion: more and more';
    for (let n = 0; n <= full.length; n++) {
      const t = full.slice(0, n);
      if (stopSettled(t, stops)) expect(cutAtStop(t, stops).text).toBe(cutAtStop(full, stops).text);
    }
    expect(stopSettled('abc\n\n', stops)).toBe(true);
    // "Ques" could still become "Question:", which starts before a later "\n\n"
    expect(stopSettled('Ques\n\n', ['Question', '\n\n'])).toBe(true);
    expect(stopSettled('a Questio', ['Question:', 'o'])).toBe(false);
    expect(stopSettled('no stop here', stops)).toBe(false);
  });

  it('pads each prompt as the reference batches it (grouped by limit, sorted by length, cut by batch size)', () => {
    const enc = (t: string) => [...t].map((c) => c.charCodeAt(0));
    const reqs = ['aaaa', 'b', 'cc', 'dddddd', 'e'].map((p, i) => ({ prompt: p, maxNewTokens: i === 4 ? 5 : 9, stop: [] }));
    const rows = planGeneration(reqs, enc, 2);
    // limit 9: sorted b, cc | aaaa, dddddd ; limit 5: e alone
    expect(rows.map((r) => r.pad)).toEqual([2, 1, 0, 0, 0]);
    expect(rows.map((r) => r.ids.length)).toEqual([5, 2, 3, 7, 2]);
    expect(planScoring(['ab', 'abcd', 'a'], enc, 2).map((r) => r.tk)).toEqual([4, 4, 1]);
  });

  it('rows are claimed costliest first, each once', () => {
    const order = claimOrder([10, 1, 1, 8, 2]);
    expect([...order]).toEqual([0, 3, 4, 1, 2]);
    const claim = sequentialClaim(order);
    const got: number[] = [];
    for (let i = claim(); i !== undefined; i = claim()) got.push(i);
    expect(got).toEqual([0, 3, 4, 1, 2]);
    expect(claim()).toBeUndefined();
  });
});
