import type { ResultRecord } from '../results/record.js';

/** `suite.metric`, the key every chart and rule uses. */
export type MetricKey = string;

export interface MetricInfo {
  key: MetricKey;
  suite: string;
  metric: string;
  /** Perplexity, NLL, degenerate rate: smaller is better. */
  lowerIsBetter: boolean;
  /** A task score (exact match, instruction following): what "best parent on that skill" compares. */
  isSkill: boolean;
  isPerplexity: boolean;
  isNll: boolean;
  /** Perplexity, NLL, bits per char, loss: positive, spans orders of magnitude when a model breaks. */
  isFluency: boolean;
  isDegenerate: boolean;
}

const LOWER_BETTER = /(degenerate|perplexity|nll|loss|error_rate|bits_per)/i;
const FLUENCY = /(perplexity|nll|loss|bits_per)/i;

export function metricInfo(suite: string, metric: string): MetricInfo {
  const lowerIsBetter = LOWER_BETTER.test(metric);
  return {
    key: `${suite}.${metric}`,
    suite,
    metric,
    lowerIsBetter,
    // The lm suite measures fluency, not a skill; its numbers go through the perplexity rule.
    isSkill: !lowerIsBetter && suite !== 'lm',
    isPerplexity: /perplexity/i.test(metric),
    isNll: /nll/i.test(metric),
    isFluency: FLUENCY.test(metric),
    isDegenerate: /degenerate/i.test(metric),
  };
}

export function metricValue(r: ResultRecord, key: MetricKey): number | undefined {
  const dot = key.indexOf('.');
  const v = r.metrics[key.slice(0, dot)]?.[key.slice(dot + 1)];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Bookkeeping numbers an evaluator reports beside its scores (items evaluated, ...): not charted, not judged. */
export const isCountMetric = (metric: string): boolean => /^(n|count|num_\w+|n_\w+|\w+_count)$/i.test(metric);

/** Every metric present in any record but counts, skills first, in first-seen suite order. */
export function listMetrics(records: readonly ResultRecord[]): MetricInfo[] {
  const seen = new Map<MetricKey, MetricInfo>();
  for (const r of records) {
    for (const [suite, ms] of Object.entries(r.metrics)) {
      for (const metric of Object.keys(ms)) {
        if (isCountMetric(metric)) continue;
        const info = metricInfo(suite, metric);
        if (!seen.has(info.key)) seen.set(info.key, info);
      }
    }
  }
  const all = [...seen.values()];
  const rank = (m: MetricInfo): number => (m.isSkill ? 0 : m.isFluency ? 1 : 2);
  return all.map((m, i) => ({ m, i })).sort((a, b) => rank(a.m) - rank(b.m) || a.i - b.i).map(({ m }) => m);
}

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

/** True when every record's value of `a` is fixed by its value of `b` (zipped axes, e.g. w_chat by w_stage1). */
export function determinedBy(records: readonly ResultRecord[], a: string, b: string): boolean {
  const seen = new Map<string, string>();
  for (const r of records) {
    const kb = JSON.stringify(r.axes[b] ?? null), va = JSON.stringify(r.axes[a] ?? null);
    const prev = seen.get(kb);
    if (prev !== undefined && prev !== va) return false;
    seen.set(kb, va);
  }
  return true;
}

/**
 * The axes worth naming: drop any axis fixed by one already kept (or by `given`), so zipped axes
 * (w_stage1, w_chat, normalize moving together) read as one setting instead of three.
 */
export function independentAxes(records: readonly ResultRecord[], axes: readonly string[], given: readonly string[] = []): string[] {
  const kept: string[] = [];
  for (const a of axes) if (![...given, ...kept].some((b) => determinedBy(records, a, b))) kept.push(a);
  return kept;
}

/** Axes that look like a merge weight: weight, weights, w, w_math, chat_w, ... */
export const isWeightAxis = (a: string): boolean => /weight|^w$|^w_|_w$/i.test(a);

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

export function isNumericAxis(records: readonly ResultRecord[], axis: string): boolean {
  let any = false;
  for (const r of records) {
    const v = r.axes[axis];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number') return false;
    any = true;
  }
  return any;
}

export const okMerges = (records: readonly ResultRecord[]): ResultRecord[] => records.filter((r) => r.role === 'merge' && r.status === 'ok');

export function fmt(v: number | undefined, digits = 3): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 1000) return v.toExponential(2);
  return String(Number(v.toPrecision(digits)));
}
