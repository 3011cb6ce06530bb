import type { ResultRecord } from '../results/record.js';
import { listMetrics, metricValue, okMerges, seedOf, settingLabel, varyingAxes, type MetricInfo, type MetricKey } from './metrics.js';
import type { References } from './collapse.js';

/** The records of one merge setting (variant + axes) over its seeds. */
export interface SettingGroup {
  key: string;
  variant: string;
  axes: ResultRecord['axes'];
  label: string;
  records: ResultRecord[];
  seeds: (number | null)[];
}

/** Identity of a record's setting: variant and every axis but the seed. */
export function settingKey(r: Pick<ResultRecord, 'variant' | 'axes'>): string {
  return JSON.stringify([r.variant, Object.entries(r.axes).filter(([k]) => k !== 'seed').sort(([a], [b]) => a.localeCompare(b))]);
}

/** Group merges by variant and every axis except the seed, in first-seen order. */
export function groupBySetting(records: readonly ResultRecord[], labelAxes?: readonly string[]): SettingGroup[] {
  const axes = labelAxes ?? varyingAxes(records);
  const groups = new Map<string, SettingGroup>();
  for (const r of records) {
    const settingAxes = Object.fromEntries(Object.entries(r.axes).filter(([k]) => k !== 'seed'));
    const key = settingKey(r);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { key, variant: r.variant, axes: settingAxes, label: settingLabel(r, axes), records: [], seeds: [] }));
    g.records.push(r);
    g.seeds.push(seedOf(r));
  }
  return [...groups.values()];
}

export interface Spread { mean: number; min: number; max: number; n: number }

export function spread(rs: readonly ResultRecord[], metric: MetricKey): Spread | undefined {
  const vs = rs.map((r) => metricValue(r, metric)).filter((v): v is number => v !== undefined);
  if (!vs.length) return undefined;
  return { mean: vs.reduce((a, b) => a + b, 0) / vs.length, min: Math.min(...vs), max: Math.max(...vs), n: vs.length };
}

/** A skill score as a fraction of the best parent's (undefined without a parent scoring above 0). */
export function fractionOfBest(value: number, m: MetricInfo, refs: References): number | undefined {
  const best = refs.bestParent(m);
  return best && best.value > 0 ? value / best.value : undefined;
}

export interface BestRow {
  variant: string;
  label: string;
  axes: ResultRecord['axes'];
  seeds: number;
  /** Mean over seeds of each metric. */
  means: Record<MetricKey, number>;
  /** Mean over skills of (score / best parent's score): 1 means as good as the specialist on every skill. */
  meanFraction: number | undefined;
  flaggedSeeds: number;
}

/**
 * The best setting of each merge variant: highest mean fraction of the best parent over skills
 * (raw mean skill score when there are no parents), averaged over seeds.
 */
export function bestPerVariant(records: readonly ResultRecord[], refs: References, flagged: ReadonlySet<string>): BestRow[] {
  const metrics = listMetrics(records);
  const skills = metrics.filter((m) => m.isSkill);
  const rows = new Map<string, BestRow & { score: number }>();
  for (const g of groupBySetting(okMerges(records))) {
    const means: Record<MetricKey, number> = {};
    for (const m of metrics) {
      const s = spread(g.records, m.key);
      if (s) means[m.key] = s.mean;
    }
    const fr = skills.map((m) => (means[m.key] === undefined ? undefined : fractionOfBest(means[m.key], m, refs))).filter((v): v is number => v !== undefined);
    const raw = skills.map((m) => means[m.key]).filter((v): v is number => v !== undefined);
    const meanFraction = fr.length ? fr.reduce((a, b) => a + b, 0) / fr.length : undefined;
    const score = meanFraction ?? (raw.length ? raw.reduce((a, b) => a + b, 0) / raw.length : -Infinity);
    const cur = rows.get(g.variant);
    if (!cur || score > cur.score) {
      rows.set(g.variant, { variant: g.variant, label: g.label, axes: g.axes, seeds: g.records.length, means, meanFraction, flaggedSeeds: g.records.filter((r) => flagged.has(r.point)).length, score });
    }
  }
  return [...rows.values()].sort((a, b) => b.score - a.score).map(({ score: _s, ...r }) => r);
}
