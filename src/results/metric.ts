import { z } from 'zod';

/**
 * What a metric is, as its eval suite declares it (lm-eval's `higher_is_better`, plus a role and
 * how items add up to the score). Records carry these beside the numbers, so a report or a sweep
 * never guesses from a metric's name, and records of suites that are not built in read the same.
 *
 * - skill: what a fine-tune was trained for (exact match, instruction following); merges are
 *   judged on keeping each parent's skill.
 * - quality: health of the model whatever its skills (perplexity, degenerate outputs).
 * - cost: what the evaluation spent (drawn in tables, never judged).
 * - count: bookkeeping (items or tokens evaluated); the sample size of the others, not a score.
 */
export const METRIC_ROLES = ['skill', 'quality', 'cost'] as const;
export type ScoredRole = (typeof METRIC_ROLES)[number];

/**
 * How per-item values make the score, which is also how the report resamples it:
 * - proportion: mean of per-item 0/1 outcomes (an accuracy or a rate over items);
 * - ratio: sum of per-item values over sum of per-item weights (instructions followed over
 *   instructions, NLL over tokens);
 * - exp_ratio: exp of that ratio (perplexity).
 */
export const AGGREGATIONS = ['proportion', 'ratio', 'exp_ratio'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

export const ScoredMetricSpec = z.object({
  role: z.enum(METRIC_ROLES),
  higherIsBetter: z.boolean(),
  aggregation: z.enum(AGGREGATIONS),
  /** What one unit of the number is, for axis titles: 'share of items', 'nats per token'. */
  unit: z.string().min(1),
}).strict();
/** A count metric whose unit is this counts the items scored: the sample size of the suite's proportions. */
export const ITEMS_UNIT = 'items';
export const CountMetricSpec = z.object({ role: z.literal('count'), unit: z.string().min(1) }).strict();
export const MetricSpec = z.discriminatedUnion('role', [ScoredMetricSpec, CountMetricSpec]);
export type MetricSpec = z.infer<typeof MetricSpec>;
export type ScoredMetricSpec = z.infer<typeof ScoredMetricSpec>;

/** metricSpecs[suite][metric]. */
export const SuiteMetricSpecs = z.record(z.string(), z.record(z.string(), MetricSpec));
export type SuiteMetricSpecs = z.infer<typeof SuiteMetricSpecs>;

/**
 * Per-item outcomes of one suite, aligned with `ids`: `values[metric][i]` is item i's value
 * (0/1 for a proportion, the numerator of a ratio) and `weights[metric][i]` its denominator
 * (ratios only). Two points scored on the same ids can be compared item by item.
 */
export const SuiteItems = z.object({
  ids: z.array(z.string()),
  values: z.record(z.string(), z.array(z.number())),
  weights: z.record(z.string(), z.array(z.number())).default({}),
}).strict().superRefine((s, ctx) => {
  for (const [field, arrays] of [['values', s.values], ['weights', s.weights]] as const) {
    for (const [m, xs] of Object.entries(arrays)) {
      if (xs.length !== s.ids.length) ctx.addIssue({ code: 'custom', path: [field, m], message: `expected ${s.ids.length} numbers (one per id), got ${xs.length}` });
    }
  }
});
export type SuiteItems = z.infer<typeof SuiteItems>;

export const isScored = (s: MetricSpec | undefined): s is ScoredMetricSpec => s !== undefined && s.role !== 'count';

/** The score of items `idx` (all items when omitted) under a metric's aggregation. Pure. */
export function aggregate(spec: Pick<ScoredMetricSpec, 'aggregation'>, values: ArrayLike<number>, weights?: ArrayLike<number>, idx?: ArrayLike<number>): number {
  const n = idx ? idx.length : values.length;
  let num = 0, den = 0;
  for (let j = 0; j < n; j++) {
    const i = idx ? idx[j] : j;
    num += values[i];
    den += spec.aggregation === 'proportion' || !weights ? 1 : weights[i];
  }
  const r = num / den;
  return spec.aggregation === 'exp_ratio' ? Math.exp(r) : r;
}

/**
 * The metric a one-line summary shows for a suite: its first declared skill, else its first
 * declared quality metric; undefined when the suite declares neither.
 */
export function headlineMetric(specs: Readonly<Record<string, MetricSpec>> | undefined): string | undefined {
  const entries = Object.entries(specs ?? {});
  return (entries.find(([, s]) => s.role === 'skill') ?? entries.find(([, s]) => s.role === 'quality'))?.[0];
}
