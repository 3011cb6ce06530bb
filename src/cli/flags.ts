/**
 * Parsers for commander's numeric and list flags. A bad value is a user error that names the flag
 * and what was expected, like every other mistake in input.
 */
import { UserError } from '../util/errors.js';

/** A whole number of at least `min`. */
export function wholeNumber(flag: string, min: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UserError(`${flag}: expected a whole number >= ${min}, got "${v}"`, { field: flag });
    return n;
  };
}

/** A finite number from `lo` to `hi`. */
export function numberIn(flag: string, lo: number, hi: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < lo || n > hi) throw new UserError(`${flag}: expected a number from ${lo} to ${hi}, got "${v}"`, { field: flag });
    return n;
  };
}

/** A comma-separated list; the flag may repeat, each time adding to the list. */
export function commaList(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
}
