/**
 * Counter-based random streams. The uniform for element i of the stream keyed by
 * (seed, stage, model, tensor) is a pure function of those values, so a mask is the same whatever
 * the order tensors are merged in, how the work is split over threads, or which backend runs the
 * arithmetic (both backends draw their masks here).
 *
 * Construction: the key is two independent 32-bit string hashes (murmur3-style) of the four
 * values; element i maps to mix(mix(i + k0) ^ k1), where mix is a bijective 32-bit avalanche
 * function (Wellons' lowbias32). Uniforms take the top 24 bits, so u = j / 2^24 exactly in float32,
 * u in [0, 1). Indices at or above 2^32 re-key per 2^32 block so streams never wrap.
 */
import { UserError } from '../util/errors.js';
import type { RngKey } from './types.js';

const TWO_NEG_24 = 1 / 16777216;
const TWO_32 = 4294967296;

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function hashBytes(bytes: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const n4 = bytes.length & ~3;
  for (let i = 0; i < n4; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  const rem = bytes.length & 3;
  if (rem >= 3) k ^= bytes[n4 + 2] << 16;
  if (rem >= 2) k ^= bytes[n4 + 1] << 8;
  if (rem >= 1) {
    k ^= bytes[n4];
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= bytes.length;
  return mix32(h);
}

const encoder = new TextEncoder();

/** Key of the mask stream for one model's tensor in one stage under one seed. */
export function maskKey(seed: number, stage: string, model: string, tensor: string): RngKey {
  if (!Number.isSafeInteger(seed)) throw new UserError(`seed must be an integer (at most 2^53 - 1 in size), got ${seed}`, { field: 'seed' });
  // Length-prefixed fields: ("ab","c") and ("a","bc") must not collide.
  const fields = [String(seed), stage, model, tensor].map((f) => `${f.length}:${f}`).join('|');
  const bytes = encoder.encode(`mergelab-mask-v1|${fields}`);
  return { k0: hashBytes(bytes, 0x9e3779b9), k1: hashBytes(bytes, 0x85ebca6b) };
}

/** The key for indices [hi * 2^32, (hi + 1) * 2^32). */
function blockKey(key: RngKey, hi: number): RngKey {
  if (hi === 0) return key;
  return { k0: mix32((key.k0 ^ Math.imul(hi, 0x9e3779b9)) >>> 0), k1: mix32((key.k1 + hi) >>> 0) };
}

/** The 24-bit integer behind uniform i (uniform = bits / 2^24). */
export function uniformBits(key: RngKey, i: number): number {
  const hi = Math.floor(i / TWO_32);
  const k = blockKey(key, hi);
  return mix32(mix32(((i - hi * TWO_32) + k.k0) >>> 0) ^ k.k1) >>> 8;
}

/**
 * Calls `body(k0, k1, lo, from, to)` for each 2^32 block overlapping [start, start + n):
 * element index e = start + j maps to counter lo + (j - from) in the block's key.
 */
function forBlocks(key: RngKey, start: number, n: number, body: (k0: number, k1: number, lo: number, from: number, to: number) => void): void {
  let j = 0;
  while (j < n) {
    const e = start + j;
    const hi = Math.floor(e / TWO_32);
    const lo = e - hi * TWO_32;
    const len = Math.min(n - j, TWO_32 - lo);
    const k = blockKey(key, hi);
    body(k.k0, k.k1, lo, j, j + len);
    j += len;
  }
}

/** out[j] = uniform(start + j) in [0, 1). */
export function fillUniform(key: RngKey, out: Float32Array, start = 0): Float32Array {
  forBlocks(key, start, out.length, (k0, k1, lo, from, to) => {
    const c = lo - from + k0;
    for (let j = from; j < to; j++) {
      const x = mix32(mix32((c + j) >>> 0) ^ k1);
      out[j] = (x >>> 8) * TWO_NEG_24;
    }
  });
  return out;
}

/**
 * out[j] = 1 when uniform(start + j) < p, else 0; returns the number kept.
 * Compared on the 24-bit integers: bits/2^24 < p  <=>  bits < ceil(p * 2^24).
 */
export function fillBernoulli(key: RngKey, p: number, out: Uint8Array, start = 0): number {
  const threshold = Math.ceil(p * 16777216);
  let kept = 0;
  forBlocks(key, start, out.length, (k0, k1, lo, from, to) => {
    const c = lo - from + k0;
    for (let j = from; j < to; j++) {
      const x = mix32(mix32((c + j) >>> 0) ^ k1);
      // Branch-free: the sign bit of (bits - threshold) is 1 exactly when bits < threshold.
      const keep = ((x >>> 8) - threshold) >>> 31;
      out[j] = keep;
      kept += keep;
    }
  });
  return kept;
}

// Give the fill loops type feedback before any long run compiles them on-stack (see loops.ts warmUp).
{
  const k = { k0: 1, k1: 2 };
  for (let rep = 0; rep < 2; rep++) {
    fillUniform(k, new Float32Array(64), rep);
    fillBernoulli(k, 0.5, new Uint8Array(64), rep);
  }
}
