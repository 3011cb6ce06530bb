import type { ResultRecord, Sample } from '../results/record.js';
import type { CollapseFlag } from './collapse.js';

export interface SampleOutput {
  name: string;
  role: 'point' | 'base' | 'parent';
  output: string;
  correct: boolean | undefined;
}

/** One prompt with the flagged point's generation beside the references' on the same prompt. */
export interface SampleComparison {
  suite: string;
  id: string;
  prompt: string;
  point: SampleOutput;
  references: SampleOutput[];
}

const key = (s: Pick<Sample, 'suite' | 'id'>): string => `${s.suite}\u0000${s.id}`;

/**
 * A few generations of a flagged point, chosen to show the collapse: from the suites whose rules it
 * broke, prompts it got wrong while a reference got right first, then other misses, then the rest.
 * References are matched by suite and sample id; a prompt no reference answered still shows.
 */
export function sampleComparisons(flag: CollapseFlag, records: readonly ResultRecord[], n: number): SampleComparison[] {
  const point = records.find((r) => r.point === flag.point);
  if (!point || n <= 0) return [];
  const refs = records.filter((r) => r.status === 'ok' && (r.role === 'base' || r.role === 'parent'));
  refs.sort((a, b) => (a.role === b.role ? a.variant.localeCompare(b.variant) : a.role === 'base' ? -1 : 1));
  // A reference evaluated more than once shows its first record's generations.
  const byRef = new Map<string, { role: 'base' | 'parent'; samples: Map<string, Sample> }>();
  for (const r of refs) {
    if (!byRef.has(r.variant)) byRef.set(r.variant, { role: r.role as 'base' | 'parent', samples: new Map(r.samples.map((s) => [key(s), s])) });
  }
  const suites = new Set(flag.violations.map((v) => v.metric.slice(0, v.metric.indexOf('.'))));
  // Perplexity lives in the lm suite, which has no generations: show any suite then.
  const relevant = point.samples.filter((s) => suites.has(s.suite));
  const pool = relevant.length ? relevant : point.samples;
  const refCorrect = (s: Sample): boolean => [...byRef.values()].some((r) => r.samples.get(key(s))?.correct === true);
  const rank = (s: Sample): number => (s.correct === false && refCorrect(s) ? 0 : s.correct === false ? 1 : 2);
  const ranked = pool.map((s, i) => ({ s, i })).sort((a, b) => rank(a.s) - rank(b.s) || a.i - b.i).map(({ s }) => s);
  // Take suites in turn so a point broken on math and chat shows both, not n math prompts.
  const bySuite = new Map<string, Sample[]>();
  for (const s of ranked) {
    if (!bySuite.has(s.suite)) bySuite.set(s.suite, []);
    bySuite.get(s.suite)!.push(s);
  }
  const chosen: Sample[] = [];
  for (let round = 0; chosen.length < n && [...bySuite.values()].some((q) => q.length > round); round++) {
    for (const q of bySuite.values()) if (q[round] && chosen.length < n) chosen.push(q[round]);
  }
  return chosen.map((s) => ({
    suite: s.suite,
    id: s.id,
    prompt: s.prompt,
    point: { name: flag.point, role: 'point', output: s.output, correct: s.correct },
    references: [...byRef.entries()].flatMap(([name, r]) => {
      const m = r.samples.get(key(s));
      return m ? [{ name, role: r.role, output: m.output, correct: m.correct }] : [];
    }),
  }));
}
