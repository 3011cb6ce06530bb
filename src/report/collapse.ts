import type { ResultRecord } from '../results/record.js';
import type { CollapseThresholds, StandoutThresholds } from './options.js';
import { DEFAULT_STANDOUTS, DEFAULT_THRESHOLDS } from './options.js';
import { fmt, listMetrics, metricValue, seedOf, type MetricInfo, type MetricKey } from './metrics.js';
import { Noise, refKey } from './noise.js';
import { combine, type Interval } from './stats.js';
import { parseDiagnostics, standoutDiagnostics, type Standout } from './diagnostics.js';

export type CollapseRule = 'below_parent_fraction' | 'below_base' | 'quality_vs_base' | 'quality_rate';

export interface Reference {
  role: 'base' | 'parent';
  /** The reference model's name (its record's variant). */
  name: string;
  value: number;
}

export interface Violation {
  rule: CollapseRule;
  metric: MetricKey;
  value: number;
  /** What the value was compared with (null for the absolute rate rule). */
  reference: Reference | null;
  /** The number the value crossed (e.g. 0.5 x best parent). */
  limit: number;
  /** Interval of value minus limit (paired with the reference on the same items when recorded); undefined without a noise model. */
  margin?: Interval;
  /** True when the whole interval is past the limit, false when the limit is within the noise, undefined without an interval. */
  beyondNoise?: boolean;
  /** 0 at the limit, growing with how far past it the value is. */
  severity: number;
  message: string;
  /** The same numbers in a few words, for tables grouped by rule. */
  short: string;
}

export interface CollapseFlag {
  point: string;
  variant: string;
  seed: number | null;
  axes: ResultRecord['axes'];
  violations: Violation[];
  /** A rule is broken beyond the noise (or with no noise model to say otherwise): a collapse, not a borderline case. */
  collapsed: boolean;
  standouts: Standout[];
  severity: number;
}

export interface References {
  base: ResultRecord[];
  parents: Map<string, ResultRecord[]>;
  /** Mean over the reference's records (references may be evaluated more than once). */
  baseValue(metric: MetricKey): number | undefined;
  parentValue(parent: string, metric: MetricKey): number | undefined;
  /** The parent with the best score, in the metric's declared direction. */
  bestParent(metric: MetricInfo): Reference | undefined;
}

export function mean(xs: readonly number[]): number | undefined {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
}

export function references(records: readonly ResultRecord[]): References {
  const ok = records.filter((r) => r.status === 'ok');
  const base = ok.filter((r) => r.role === 'base');
  const parents = new Map<string, ResultRecord[]>();
  for (const r of ok.filter((r) => r.role === 'parent')) {
    if (!parents.has(r.variant)) parents.set(r.variant, []);
    parents.get(r.variant)!.push(r);
  }
  const avg = (rs: ResultRecord[], m: MetricKey): number | undefined => mean(rs.map((r) => metricValue(r, m)).filter((v): v is number => v !== undefined));
  return {
    base,
    parents,
    baseValue: (m) => avg(base, m),
    parentValue: (p, m) => avg(parents.get(p) ?? [], m),
    bestParent(info) {
      let best: Reference | undefined;
      for (const [name, rs] of parents) {
        const v = avg(rs, info.key);
        if (v === undefined) continue;
        if (!best || (info.higherIsBetter ? v > best.value : v < best.value)) best = { role: 'parent', name, value: v };
      }
      return best;
    },
  };
}

/** What judging a point needs besides the point: the metrics, references, thresholds and noise. */
export interface Judge {
  metrics: MetricInfo[];
  refs: References;
  th: CollapseThresholds;
  noise: Noise;
}

export function makeJudge(records: readonly ResultRecord[], th: CollapseThresholds = DEFAULT_THRESHOLDS, noise?: Noise): Judge {
  const metrics = listMetrics(records);
  return { metrics, refs: references(records), th, noise: noise ?? new Noise(records, metrics) };
}

/**
 * Where the value sits against the limit, with the noise: the interval of value - limit, where
 * the limit moves with its reference's replicates (paired when both were scored on the same items).
 */
function margin(j: Judge, r: ResultRecord, m: MetricInfo, ref: ResultRecord[] | null, limitOf: (refValue: number) => number): Interval | undefined {
  const mine = j.noise.record(r, m);
  if (!mine) return undefined;
  if (!ref) return j.noise.spread(combine([mine], (v) => v - limitOf(0))!);
  const theirs = j.noise.mean(ref, m, refKey(ref[0]?.variant ?? ''));
  return theirs ? j.noise.spread(combine([mine, theirs], (v, p) => v - limitOf(p))!) : undefined;
}

/** Past the limit beyond the noise: the whole interval of (value - limit) on the bad side. */
const beyond = (iv: Interval | undefined, badIsBelow: boolean): boolean | undefined => (iv === undefined ? undefined : badIsBelow ? iv.hi < 0 : iv.lo > 0);

/**
 * Rule violations of one merged point against the references, each with whether it is beyond the
 * noise. Skills: below a fraction of the best parent (in the metric's direction), worse than the
 * base. Quality: a rate (proportion) over the absolute limit; a suite's headline quality metric
 * (perplexity) worse than a factor times the base's. Pure.
 */
export function checkPoint(r: ResultRecord, j: Judge, expected?: readonly string[]): Violation[] {
  const { refs, th } = j;
  const out: Violation[] = [];
  for (const m of j.metrics) {
    const v = metricValue(r, m.key);
    if (v === undefined) continue;
    const hib = m.higherIsBetter;
    if (m.role === 'skill') {
      const best = refs.bestParent(m);
      // A skill owned by a parent this variant does not merge in cannot be lost by it.
      if (expected && best && !expected.includes(best.name)) continue;
      if (best && best.value > 0) {
        const f = th.parentFraction;
        const limit = hib ? f * best.value : best.value / f;
        const kept = hib ? v / best.value : best.value / v;
        if (hib ? v < limit : v > limit) {
          const mg = margin(j, r, m, refs.parents.get(best.name)!, (p) => (hib ? f * p : p / f));
          out.push({
            rule: 'below_parent_fraction', metric: m.key, value: v, reference: best, limit, margin: mg, beyondNoise: beyond(mg, hib), severity: Math.abs(limit - v) / Math.abs(limit),
            short: `${m.key} ${fmt(v)} = ${fmt(kept, 2)}x ${best.name} (${fmt(best.value)})`,
            message: `${m.key} ${fmt(v)} keeps ${fmt(kept, 2)} of the best parent's (${best.name}: ${fmt(best.value)}), below the ${fmt(f, 2)} limit`,
          });
        }
      }
      const bv = refs.baseValue(m.key);
      if (th.belowBase && bv !== undefined) {
        const limit = hib ? bv - th.baseMargin : bv + th.baseMargin;
        if (hib ? v < limit : v > limit) {
          const name = refs.base[0]?.variant ?? 'base';
          const mg = margin(j, r, m, refs.base, (b) => (hib ? b - th.baseMargin : b + th.baseMargin));
          out.push({
            rule: 'below_base', metric: m.key, value: v, reference: { role: 'base', name, value: bv }, limit, margin: mg, beyondNoise: beyond(mg, hib),
            severity: Math.abs(bv - v) / Math.max(Math.abs(bv), 1e-9),
            short: `${m.key} ${fmt(v)} ${hib ? '<' : '>'} ${fmt(bv)}`,
            message: `${m.key} ${fmt(v)} is worse than the base model (${name}: ${fmt(bv)})`,
          });
        }
      }
    } else if (m.role === 'quality' && m.aggregation === 'proportion') {
      const bad = hib ? v < 1 - th.degenerateRate : v > th.degenerateRate;
      if (bad) {
        const limit = hib ? 1 - th.degenerateRate : th.degenerateRate;
        const mg = margin(j, r, m, null, () => limit);
        const bv = refs.baseValue(m.key);
        const context = bv === undefined ? '' : `; base ${Math.round(bv * 100)}%`;
        out.push({
          rule: 'quality_rate', metric: m.key, value: v, reference: null, limit, margin: mg, beyondNoise: beyond(mg, hib),
          severity: Math.abs(v - limit) / Math.max(1e-9, hib ? limit : 1 - limit),
          short: `${m.key} ${Math.round(v * 100)}%${context ? ` (${context.slice(2)})` : ''}`,
          message: `${m.key} ${fmt(v)}: ${Math.round(v * 100)}% (limit ${Math.round(limit * 100)}%${context})`,
        });
      }
    } else if (m.role === 'quality' && m.headline) {
      // Compare with the base; a base-less experiment falls back on its best parent on this metric.
      const bv = refs.baseValue(m.key);
      const bp = refs.bestParent(m);
      const ref: (Reference & { records: ResultRecord[] }) | undefined = bv !== undefined
        ? { role: 'base', name: refs.base[0]?.variant ?? 'base', value: bv, records: refs.base }
        : bp ? { ...bp, records: refs.parents.get(bp.name)! } : undefined;
      if (!ref || !(ref.value > 0)) continue;
      const k = th.perplexityFactor;
      const limit = hib ? ref.value / k : k * ref.value;
      if (hib ? v < limit : v > limit) {
        const mg = margin(j, r, m, ref.records, (b) => (hib ? b / k : k * b));
        const times = hib ? ref.value / v : v / ref.value;
        out.push({
          rule: 'quality_vs_base', metric: m.key, value: v, reference: { role: ref.role, name: ref.name, value: ref.value }, limit, margin: mg, beyondNoise: beyond(mg, hib),
          severity: Math.log(times / k) + 0.1,
          short: `${fmt(v)} = ${fmt(times, 2)}x ${hib ? 'worse than ' : ''}${ref.name} (${fmt(ref.value)})`,
          message: `${m.key} ${fmt(v)} is ${fmt(times, 2)}x ${hib ? 'below' : 'above'} the ${ref.role === 'base' ? 'base' : 'parent'} (${ref.name}: ${fmt(ref.value)}), past the ${fmt(k, 2)}x limit`,
        });
      }
    }
  }
  return out;
}

/**
 * Every merge point that breaks a rule, worst first, with the rules it broke, whether any is
 * beyond the noise (`collapsed`; otherwise it is within noise of a limit), and the diagnostics
 * that stand out. Failed points are not collapses (they have no scores) and are reported apart.
 */
export function detectCollapses(
  records: readonly ResultRecord[],
  th: CollapseThresholds = DEFAULT_THRESHOLDS,
  st: StandoutThresholds = DEFAULT_STANDOUTS,
  expect: Readonly<Record<string, readonly string[]>> = {},
  noise?: Noise,
): CollapseFlag[] {
  const j = makeJudge(records, th, noise);
  const flags: CollapseFlag[] = [];
  for (const r of records) {
    if (r.role !== 'merge' || r.status !== 'ok') continue;
    const violations = checkPoint(r, j, expect[r.variant]);
    if (!violations.length) continue;
    flags.push({
      point: r.point, variant: r.variant, seed: seedOf(r), axes: r.axes, violations,
      collapsed: violations.some((v) => v.beyondNoise !== false),
      standouts: standoutDiagnostics(parseDiagnostics(r.diagnostics).stages, st),
      severity: violations.reduce((a, v) => a + v.severity, 0),
    });
  }
  return flags.sort((a, b) => Number(b.collapsed) - Number(a.collapsed) || b.severity - a.severity || a.point.localeCompare(b.point));
}
