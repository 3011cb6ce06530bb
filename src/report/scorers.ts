import type { ResultRecord } from '../results/record.js';

/**
 * Who scored the points, for the page's header: one line per backend, command and cache key, with
 * lm-eval's version where known and how many points it scored. Empty when the built-in evaluator
 * scored every point: it is the default, and a page says only what differs from it. Pure.
 */
export function scorerLines(records: readonly ResultRecord[]): string[] {
  if (records.every((r) => r.scoredBy === undefined)) return [];
  const groups = new Map<string, { points: number; versions: Set<string> }>();
  for (const r of records) {
    const s = r.scoredBy;
    const label = !s ? `built-in evaluator (${r.backend})` : [s.backend, s.template ?? s.endpoint, s.endpoint && s.template ? `at ${s.endpoint}` : undefined, `key ${s.key}`].filter(Boolean).join(', ');
    const g = groups.get(label) ?? { points: 0, versions: new Set<string>() };
    g.points++;
    if (s?.lmEvalVersion) g.versions.add(s.lmEvalVersion);
    groups.set(label, g);
  }
  return [...groups.entries()].map(([label, g]) => `${label}${g.versions.size ? `, lm-eval ${[...g.versions].join(' and ')}` : ''} (${g.points} point${g.points === 1 ? '' : 's'})`);
}
