/**
 * 16-bit float <-> f32 conversion loops for checkpoint I/O, in ranges so the typed backend can
 * split them over threads (the single-threaded conversions were 40% of a bf16 task_arithmetic
 * merge's main-thread time, bench/merge-memory.ts).
 *
 * Widening runs in place: a tensor's 16-bit values are read into the first 2n bytes of its f32
 * buffer and widened there, so a tensor never needs a second buffer. Element j's f32 lands on
 * bytes [4j, 4j + 4), over 16-bit inputs 2j and 2j + 1; so the upper half [ceil(hi/2), hi) of the
 * still-unconverted prefix [0, hi) writes only past every input it reads, in any order and on
 * any number of threads, and the prefix halves phase by phase (`widenPhases`); the last small
 * prefix goes backwards on one thread (`widenTail`), where each write lands on inputs already read.
 */
import { f16Table, f32ToBf16, f32ToF16 } from '../checkpoint/dtype.js';

export type HalfDType = 'BF16' | 'F16';

function views(buf: Float32Array, n: number): { half: Uint16Array; word: Int32Array } {
  if (buf.length < n) throw new RangeError(`widen: buffer has ${buf.length} elements, need ${n}`);
  return { half: new Uint16Array(buf.buffer, buf.byteOffset, n), word: new Int32Array(buf.buffer, buf.byteOffset, n) };
}

/** Widen elements [start, end) in place; the caller guarantees no write lands on an unread input. */
export function widenRange(dtype: HalfDType, buf: Float32Array, n: number, start: number, end: number): void {
  const { half, word } = views(buf, n);
  if (dtype === 'BF16') {
    for (let j = start; j < end; j++) word[j] = half[j] << 16;
  } else {
    const t = new Int32Array(f16Table().buffer);
    for (let j = start; j < end; j++) word[j] = t[half[j]];
  }
}

/** Widen elements [0, hi) in place, last first (safe on one thread for any hi). */
export function widenTail(dtype: HalfDType, buf: Float32Array, n: number, hi: number): void {
  const { half, word } = views(buf, n);
  if (dtype === 'BF16') {
    for (let j = hi - 1; j >= 0; j--) word[j] = half[j] << 16;
  } else {
    const t = new Int32Array(f16Table().buffer);
    for (let j = hi - 1; j >= 0; j--) word[j] = t[half[j]];
  }
}

/**
 * The parallel phases of an in-place widening of n elements: ranges [lo, hi), each free of
 * read/write overlap, while they hold at least `minLen` elements. Returns the phases and the
 * prefix left for `widenTail`.
 */
export function widenPhases(n: number, minLen: number): { phases: Array<[number, number]>; tail: number } {
  const phases: Array<[number, number]> = [];
  let hi = n;
  while (hi - Math.ceil(hi / 2) >= Math.max(1, minLen)) {
    const lo = Math.ceil(hi / 2);
    phases.push([lo, hi]);
    hi = lo;
  }
  return { phases, tail: hi };
}

/** f32 -> 16-bit float (round to nearest even) for elements [start, end). */
export function narrowRange(dtype: HalfDType, src: Float32Array, dst: Uint16Array, start: number, end: number): void {
  if (dtype === 'BF16') f32ToBf16(src.subarray(start, end), dst.subarray(start, end));
  else f32ToF16(src.subarray(start, end), dst.subarray(start, end));
}
