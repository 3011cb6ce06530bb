/**
 * "Did you mean X?": the known name nearest to an unknown one, by edit distance (insertions,
 * deletions, substitutions and swaps of neighbours each cost 1), only when it is near enough to be
 * a likely typo rather than another name altogether.
 */

/** Optimal-string-alignment distance (Damerau-Levenshtein without repeated edits of a substring). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev2: number[] = [];
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur.push(d);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[n];
}

/**
 * The nearest of `known` to `name` (case and `-`/`_` differences cost nothing extra beyond their
 * edits), or undefined when none is within a third of the name's length (at least 1, at most 3).
 * Ties go to the earlier name in `known`.
 */
export function nearest(name: string, known: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/-/g, '_');
  const n = norm(name);
  const limit = Math.min(3, Math.max(1, Math.floor(n.length / 3)));
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    if (k === name) continue;
    const d = editDistance(n, norm(k));
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return bestD <= limit ? best : undefined;
}
