import type { ResultRecord } from '../results/record.js';
import { headlineMetric, isScored, ITEMS_UNIT, type Aggregation, type ScoredRole } from '../results/metric.js';
import { printDecimals } from './format.js';

/** `suite.metric`, the key every chart and rule uses. */
export type MetricKey = string;

/** A scored metric of the experiment, as its suite declared it (src/results/metric.ts). */
export interface MetricInfo {
  key: MetricKey;
  suite: string;
  metric: string;
  role: ScoredRole;
  higherIsBetter: boolean;
  aggregation: Aggregation;
  unit: string;
  /** The suite's first declared skill (its first quality metric when it has no skill): what summaries, charts and goals use. */
  headline: boolean;
  /** Items the suite was scored on (the most any record used), when known: what a printed number can resolve. */
  items?: number;
  /** Decimals every number of this metric is printed with (src/report/format.ts). */
  decimals?: number;
}

export interface MetricCatalog {
  /** Skills first, then quality, then cost; suites in first-seen order, metrics in declaration order. */
  metrics: MetricInfo[];
  /** suite.metric keys with numbers but no declaration: neither charted nor judged. */
  undeclared: MetricKey[];
  /** Metrics declared differently by different records (the first declaration is used). */
  conflicts: MetricKey[];
}

const catalogs = new WeakMap<readonly ResultRecord[], MetricCatalog>();

/** Every declared metric of the records, and what could not be used. */
export function metricCatalog(records: readonly ResultRecord[]): MetricCatalog {
  const hit = catalogs.get(records);
  if (hit) return hit;
  const seen = new Map<MetricKey, { info: MetricInfo; json: string; order: number }>();
  const undeclared = new Set<MetricKey>();
  const conflicts = new Set<MetricKey>();
  const headlines = new Map<string, string | undefined>();
  const items = new Map<string, number>();
  for (const r of records) {
    for (const [suite, ms] of Object.entries(r.metrics)) {
      const n = itemCount(r, suite);
      if (n !== undefined && n > (items.get(suite) ?? 0)) items.set(suite, n);
      const specs = r.metricSpecs?.[suite];
      if (!headlines.has(suite) && specs) headlines.set(suite, headlineMetric(specs));
      for (const metric of Object.keys(ms)) {
        const key = `${suite}.${metric}`;
        const spec = specs?.[metric];
        if (!spec) {
          undeclared.add(key);
          continue;
        }
        if (!isScored(spec)) continue;
        const json = JSON.stringify(spec);
        const prev = seen.get(key);
        if (prev) {
          if (prev.json !== json) conflicts.add(key);
          continue;
        }
        const info: MetricInfo = { key, suite, metric, role: spec.role, higherIsBetter: spec.higherIsBetter, aggregation: spec.aggregation, unit: spec.unit, headline: false };
        seen.set(key, { info, json, order: seen.size });
      }
    }
  }
  for (const k of seen.keys()) undeclared.delete(k);
  const rank = { skill: 0, quality: 1, cost: 2 } as const;
  const metrics = [...seen.values()].sort((a, b) => rank[a.info.role] - rank[b.info.role] || a.order - b.order).map(({ info }) => ({ ...info, headline: headlines.get(info.suite) === info.metric, items: items.get(info.suite) }));
  for (const m of metrics) m.decimals = printDecimals(m, records.map((r) => metricValue(r, m.key)).filter((v): v is number => v !== undefined));
  const out = { metrics, undeclared: [...undeclared], conflicts: [...conflicts] };
  catalogs.set(records, out);
  return out;
}

/** Every declared scored metric present in any record (see metricCatalog). */
export const listMetrics = (records: readonly ResultRecord[]): MetricInfo[] => metricCatalog(records).metrics;

/** The headline skill of each suite that has one (math.exact_match_strict, chat.prompt_level_strict). */
export const headlineSkills = (metrics: readonly MetricInfo[]): MetricInfo[] => metrics.filter((m) => m.headline && m.role === 'skill');

/** Items a record scored a suite on: the per-item outcomes if recorded, else the suite's declared item count. */
export function itemCount(r: ResultRecord, suite: string): number | undefined {
  const items = r.items?.[suite];
  if (items) return items.ids.length;
  const specs = r.metricSpecs?.[suite] ?? {};
  const name = Object.keys(specs).find((k) => specs[k].role === 'count' && specs[k].unit === ITEMS_UNIT);
  const v = name === undefined ? undefined : r.metrics[suite]?.[name];
  return typeof v === 'number' && v > 0 ? v : undefined;
}

export function metricValue(r: ResultRecord, key: MetricKey): number | undefined {
  const dot = key.indexOf('.');
  const v = r.metrics[key.slice(0, dot)]?.[key.slice(dot + 1)];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** "higher is better" / "lower is better", for axis titles and tables. */
export const direction = (m: Pick<MetricInfo, 'higherIsBetter'>): string => (m.higherIsBetter ? 'higher is better' : 'lower is better');

export function seedOf(r: ResultRecord): number | null {
  if (r.seed !== null && r.seed !== undefined) return r.seed;
  const s = r.axes.seed;
  return typeof s === 'number' ? s : null;
}

type AxisValue = ResultRecord['axes'][string];

/** Axes whose value differs between points (seed excluded: it is the spread, not a setting). */
export function varyingAxes(records: readonly ResultRecord[]): string[] {
  const values = new Map<string, Set<string>>();
  for (const r of records) for (const [k, v] of Object.entries(r.axes)) {
    if (k === 'seed') continue;
    if (!values.has(k)) values.set(k, new Set());
    values.get(k)!.add(JSON.stringify(v ?? null));
  }
  // An axis present on some records only also "varies" (present vs absent).
  return [...values.entries()].filter(([k, s]) => s.size > 1 || records.some((r) => !(k in r.axes))).map(([k]) => k);
}

export function formatAxisValue(v: AxisValue | undefined): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'number') return String(Number(v.toPrecision(6)));
  return String(v);
}

/** The setting a record was merged at, without its seed: seeds of one setting share this label. */
export function settingLabel(r: ResultRecord, axes: readonly string[] = Object.keys(r.axes)): string {
  const parts = axes.filter((a) => a !== 'seed' && r.axes[a] !== undefined).map((a) => `${a}=${formatAxisValue(r.axes[a])}`);
  return parts.length ? `${r.variant} ${parts.join(' ')}` : r.variant;
}

export const okMerges = (records: readonly ResultRecord[]): ResultRecord[] => records.filter((r) => r.role === 'merge' && r.status === 'ok');

export function fmt(v: number | undefined, digits = 3): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 1000) return v.toExponential(2);
  return String(Number(v.toPrecision(digits)));
}
