import type { ResultRecord } from '../results/record.js';
import type { CollapseThresholds, StandoutThresholds } from './options.js';
import { DEFAULT_STANDOUTS, DEFAULT_THRESHOLDS } from './options.js';
import { fmt, listMetrics, metricValue, seedOf, type MetricInfo, type MetricKey } from './metrics.js';
import { parseDiagnostics, standoutDiagnostics, type Standout } from './diagnostics.js';

export type CollapseRule = 'below_parent_fraction' | 'below_base' | 'perplexity_explosion' | 'degenerate_outputs';

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
  /** What the value was compared with (null for the absolute degenerate-rate rule). */
  reference: Reference | null;
  /** The number the value crossed (e.g. 0.5 x best parent). */
  limit: number;
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
  standouts: Standout[];
  severity: number;
}

export interface References {
  base: ResultRecord[];
  parents: Map<string, ResultRecord[]>;
  /** Mean over the reference's records (references may be evaluated more than once). */
  baseValue(metric: MetricKey): number | undefined;
  parentValue(parent: string, metric: MetricKey): number | undefined;
  /** The parent with the highest score (lowest, for lower-is-better metrics). */
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
        if (!best || (info.lowerIsBetter ? v < best.value : v > best.value)) best = { role: 'parent', name, value: v };
      }
      return best;
    },
  };
}

/** Perplexity of a record, from lm.perplexity-like metrics or exp(nll) when only NLL was measured. */
function perplexityOf(r: ResultRecord | undefined, metrics: MetricInfo[], refs?: { value: (m: MetricKey) => number | undefined }): { metric: MetricKey; value: number } | undefined {
  const get = (m: MetricKey): number | undefined => (refs ? refs.value(m) : r ? metricValue(r, m) : undefined);
  for (const m of metrics.filter((m) => m.isPerplexity)) {
    const v = get(m.key);
    if (v !== undefined) return { metric: m.key, value: v };
  }
  for (const m of metrics.filter((m) => m.isNll)) {
    const v = get(m.key);
    if (v !== undefined) return { metric: m.key, value: Math.exp(v) };
  }
  return undefined;
}

/** Rule violations of one merged point against the references. Pure. */
export function checkPoint(
  r: ResultRecord,
  metrics: MetricInfo[],
  refs: References,
  th: CollapseThresholds = DEFAULT_THRESHOLDS,
  expected?: readonly string[],
): Violation[] {
  const out: Violation[] = [];
  for (const m of metrics) {
    const v = metricValue(r, m.key);
    if (v === undefined) continue;
    const best = m.isSkill ? refs.bestParent(m) : undefined;
    // A skill owned by a parent this variant does not merge in cannot be lost by it.
    const meant = !expected || !best || expected.includes(best.name);
    if (m.isSkill && meant) {
      if (best && best.value > 0) {
        const limit = th.parentFraction * best.value;
        if (v < limit) {
          out.push({
            rule: 'below_parent_fraction', metric: m.key, value: v, reference: best, limit, severity: (limit - v) / limit,
            short: `${m.key} ${fmt(v)} = ${fmt(v / best.value, 2)}x ${best.name} (${fmt(best.value)})`,
            message: `${m.key} ${fmt(v)} is ${fmt(v / best.value, 2)}x the best parent (${best.name}: ${fmt(best.value)}), below the ${fmt(th.parentFraction, 2)}x limit`,
          });
        }
      }
      const bv = refs.baseValue(m.key);
      if (th.belowBase && bv !== undefined && v < bv - th.baseMargin) {
        const name = refs.base[0]?.variant ?? 'base';
        out.push({
          rule: 'below_base', metric: m.key, value: v, reference: { role: 'base', name, value: bv }, limit: bv - th.baseMargin,
          severity: (bv - v) / Math.max(bv, 1e-9),
          short: `${m.key} ${fmt(v)} < ${fmt(bv)}`,
          message: `${m.key} ${fmt(v)} is below the base model (${name}: ${fmt(bv)})`,
        });
      }
    }
    if (m.isDegenerate && v > th.degenerateRate) {
      const bv = refs.baseValue(m.key);
      const context = bv === undefined ? '' : `; base ${Math.round(bv * 100)}%`;
      out.push({
        rule: 'degenerate_outputs', metric: m.key, value: v, reference: null, limit: th.degenerateRate,
        severity: (v - th.degenerateRate) / Math.max(1e-9, 1 - th.degenerateRate),
        short: `${m.key} ${Math.round(v * 100)}%${context ? ` (${context.slice(2)})` : ''}`,
        message: `${m.key} ${fmt(v)}: ${Math.round(v * 100)}% of generations degenerate (limit ${Math.round(th.degenerateRate * 100)}%${context})`,
      });
    }
  }
  const ppl = perplexityOf(r, metrics);
  if (ppl) {
    // Compare with the base; a base-less experiment falls back on its most fluent parent.
    let ref: Reference | undefined;
    const bp = perplexityOf(undefined, metrics, { value: refs.baseValue });
    if (bp) ref = { role: 'base', name: refs.base[0]?.variant ?? 'base', value: bp.value };
    else {
      for (const name of refs.parents.keys()) {
        const pp = perplexityOf(undefined, metrics, { value: (m) => refs.parentValue(name, m) });
        if (pp && (!ref || pp.value < ref.value)) ref = { role: 'parent', name, value: pp.value };
      }
    }
    if (ref && ref.value > 0) {
      const limit = th.perplexityFactor * ref.value;
      if (ppl.value > limit) {
        out.push({
          rule: 'perplexity_explosion', metric: ppl.metric, value: ppl.value, reference: ref, limit,
          severity: Math.log(ppl.value / limit) + 0.1,
          short: `${fmt(ppl.value)} = ${fmt(ppl.value / ref.value, 2)}x ${ref.name} (${fmt(ref.value)})`,
          message: `perplexity ${fmt(ppl.value)} is ${fmt(ppl.value / ref.value, 2)}x the ${ref.role === 'base' ? 'base' : 'parent'} (${ref.name}: ${fmt(ref.value)}), above the ${fmt(th.perplexityFactor, 2)}x limit`,
        });
      }
    }
  }
  return out;
}

/**
 * Every collapsed merge point, worst first, with the rules it broke and the diagnostics that stand
 * out. Failed points are not collapses (they have no scores) and are reported separately.
 */
export function detectCollapses(
  records: readonly ResultRecord[],
  th: CollapseThresholds = DEFAULT_THRESHOLDS,
  st: StandoutThresholds = DEFAULT_STANDOUTS,
  expect: Readonly<Record<string, readonly string[]>> = {},
): CollapseFlag[] {
  const metrics = listMetrics(records);
  const refs = references(records);
  const flags: CollapseFlag[] = [];
  for (const r of records) {
    if (r.role !== 'merge' || r.status !== 'ok') continue;
    const violations = checkPoint(r, metrics, refs, th, expect[r.variant]);
    if (!violations.length) continue;
    flags.push({
      point: r.point, variant: r.variant, seed: seedOf(r), axes: r.axes, violations,
      standouts: standoutDiagnostics(parseDiagnostics(r.diagnostics).stages, st),
      severity: violations.reduce((a, v) => a + v.severity, 0),
    });
  }
  return flags.sort((a, b) => b.severity - a.severity || a.point.localeCompare(b.point));
}
