/**
 * Seeded randomness and the train/eval split rule shared by the task generators.
 * Every draw comes from an explicit seed so `data/` and `evals/` rebuild byte for byte.
 */
import { mulberry32 } from '../util/random.js';

/** Seeded draws for sampling task items. */
export const rng = mulberry32;

export type Rand = () => number;
export type Split = 'train' | 'eval';

export function randInt(r: Rand, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

export function pick<T>(r: Rand, xs: readonly T[]): T {
  if (xs.length === 0) throw new Error('pick from an empty list');
  return xs[Math.floor(r() * xs.length)];
}

/** FNV-1a over a string: a stable hash, independent of the sampling seed. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Which split a value (a number tuple, a word) belongs to. One eval item in five; the rule
 * depends only on the key, so the two splits can never share one, whatever seed draws them.
 */
export function splitOf(key: string): Split {
  return fnv1a(key) % 5 === 0 ? 'eval' : 'train';
}

/** Seeds for the two splits are mixed with distinct constants so equal seeds draw different streams. */
export function splitSeed(split: Split, seed: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ (split === 'train' ? 0x1234567 : 0x7654321)) >>> 0;
}
