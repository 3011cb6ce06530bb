/**
 * Seeded randomness and the train/eval split rule shared by the task generators.
 * Every draw comes from an explicit seed so `data/` and `evals/` rebuild byte for byte.
 */
import { UserError } from '../util/errors.js';
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

/**
 * `n` distinct items of one split, in draw order. `draw` returns null for a draw it rejects, else
 * the item's identity and how to build it at its index; a repeated identity is drawn again. Gives
 * up with an error naming `fn` once the draws are clearly exhausted.
 */
export function drawDistinct<T>(fn: string, noun: string, split: Split, n: number, draw: () => { key: string; build: (index: number) => T } | null): T[] {
  if (!Number.isInteger(n) || n < 0) throw new UserError(`${fn}: n must be a non-negative integer, got ${n}`, { field: 'n' });
  const out: T[] = [];
  const seen = new Set<string>();
  let attempts = 0;
  while (out.length < n) {
    if (++attempts > n * 200 + 10_000) {
      throw new UserError(`${fn}: could only draw ${out.length} distinct ${split} ${noun} of the ${n} asked`, { field: 'n' });
    }
    const d = draw();
    if (!d || seen.has(d.key)) continue;
    seen.add(d.key);
    out.push(d.build(out.length));
  }
  return out;
}
