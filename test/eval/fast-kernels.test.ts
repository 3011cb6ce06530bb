/**
 * The fast runner's kernels against the tfjs-wasm ops they stand in for: every output bit-equal,
 * on shapes and values chosen to reach each code path (row and column remainders, sigmoid's
 * cutoffs and sign, softmax tails, keys crossing 48-key blocks, left padding).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { assembleKernels, WASM_FILE } from '../../src/eval/runner-typed/assemble.js';
import { KernelArena } from '../../src/eval/runner-typed/wasm.js';
import { mulberry32 } from '../../src/util/random.js';
import { stopSettled } from '../../src/eval/runner-typed/run.js';
import { splitRows } from '../../src/eval/runner-typed/runner.js';
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
  it('the committed kernels.wasm is what kernels.wat assembles to', async () => {
    expect(Buffer.from(await assembleKernels()).equals(readFileSync(WASM_FILE))).toBe(true);
  });

  it('fc equals tf.matMul (XNNPACK) bit for bit', async () => {
    await wasmBackend();
    const ar = new KernelArena();
    for (const [M, K, N] of [[1, 128, 101], [3, 7, 8], [7, 128, 256], [41, 384, 128], [13, 128, 768]]) {
      const ldw = (N + 7) & ~7;
      const a = rnd(M * K, 2);
      const w = rnd(K * N, 0.3);
      const ref = tf.tidy(() => tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(w, [K, N])).dataSync());
      const A = ar.alloc(M * K);
      const W = ar.alloc(K * ldw);
      const O = ar.alloc(M * ldw);
      A.f.set(a);
      for (let k = 0; k < K; k++) W.f.set(w.subarray(k * N, k * N + N), k * ldw);
      ar.k.fc(A.off, K, W.off, ldw, O.off, ldw, M, K, ldw);
      const got = new Float32Array(M * N);
      for (let m = 0; m < M; m++) got.set(O.f.subarray(m * ldw, m * ldw + N), m * N);
      expect(bitsDiffer(got, ref), `fc ${M}x${K}x${N}`).toBe(0);
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
    const hd = 32;
    const scale = 1 / Math.sqrt(hd);
    // Rows of one left-padded batch; lengths put keys across 48-key blocks and every Tk mod 4.
    for (const Tk of [5, 50, 97, 130]) {
      const pads = [0, 1, 3, Math.min(49, Tk - 1)];
      const B = pads.length;
      const q = rnd(B * Tk * hd, 2);
      const kk = rnd(B * Tk * hd, 2);
      const v = rnd(B * Tk * hd);
      const mask = new Float32Array(B * Tk * Tk);
      for (let b = 0; b < B; b++) for (let i = 0; i < Tk; i++) for (let j = 0; j < Tk; j++) if (j > i || j < pads[b]) mask[(b * Tk + i) * Tk + j] = -1e9;
      const ref = tf.tidy(() => {
        const Q = tf.tensor3d(q, [B, Tk, hd]);
        const Kt = tf.transpose(tf.tensor3d(kk, [B, Tk, hd]), [0, 2, 1]);
        const s = tf.add(tf.mul(tf.matMul(Q, Kt as tf.Tensor3D), scale), tf.tensor3d(mask, [B, Tk, Tk]));
        return tf.matMul(tf.softmax(s, -1) as tf.Tensor3D, tf.tensor3d(v, [B, Tk, hd])).dataSync();
      });
      const cap = ((Tk + 3) & ~3) + 4;
      const KT = ar.alloc(hd * cap);
      const V = ar.alloc(cap * hd);
      const Q = ar.alloc(hd);
      const SC = ar.alloc(cap + 8);
      const O = ar.alloc(hd);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < Tk; j++) for (let d = 0; d < hd; d++) KT.f[d * cap + j] = kk[(b * Tk + j) * hd + d];
        V.f.set(v.subarray(b * Tk * hd, (b + 1) * Tk * hd));
        for (let i = pads[b]; i < Tk; i++) {
          Q.f.set(q.subarray((b * Tk + i) * hd, (b * Tk + i + 1) * hd));
          ar.k.attend(Q.off, KT.off, cap, V.off, SC.off, O.off, pads[b], i, Tk, scale, hd);
          expect(bitsDiffer(O.f, ref.subarray((b * Tk + i) * hd, (b * Tk + i + 1) * hd)), `Tk ${Tk} pad ${pads[b]} query ${i}`).toBe(0);
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

  it('splits rows across threads by cost', () => {
    const parts = splitRows([10, 1, 1, 8, 2], 2);
    expect(parts.flat().sort()).toEqual([0, 1, 2, 3, 4]);
    expect(parts).toEqual([[0, 1], [2, 3, 4]]);
  });
});
