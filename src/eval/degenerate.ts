/**
 * Degenerate output: what a collapsed model produces. Empty (or whitespace only), or an output
 * that ran to the token limit while looping: one character, or a short n-gram, repeated to the end.
 */

/** Longest suffix of `s` that repeats with period `p` (s[i] === s[i - p] throughout). */
function periodicSuffixLength(s: string, p: number): number {
  let i = s.length - 1;
  while (i - p >= 0 && s[i] === s[i - p]) i--;
  return s.length - 1 - i;
}

export interface LoopInfo { period: number; span: number }

/**
 * The shortest period (<= maxPeriod) whose repetition runs to the end of `s`, covering at least
 * three periods and at least `minFraction` of the text; null when there is none.
 */
export function trailingLoop(s: string, maxPeriod = 32, minFraction = 0.5): LoopInfo | null {
  for (let p = 1; p <= Math.min(maxPeriod, Math.floor(s.length / 3)); p++) {
    const span = periodicSuffixLength(s, p) + p;
    if (span >= 3 * p && span >= minFraction * s.length) return { period: p, span };
  }
  return null;
}

/**
 * `hitLimit`: the generation stopped at the token limit rather than at <eos> (undefined when the
 * backend cannot tell; then a loop covering half the output is enough).
 */
export function isDegenerate(output: string, hitLimit: boolean | undefined): boolean {
  if (output.trim() === '') return true;
  if (hitLimit === false) return false;
  return trailingLoop(output) !== null;
}
