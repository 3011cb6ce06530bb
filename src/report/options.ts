import { z } from 'zod';
import { DEFAULT_NOISE, type NoiseOptions } from './noise.js';
import type { MetricKey } from './metrics.js';

/**
 * What makes a point "collapsed": half the best parent, any drop below the base, a headline
 * quality metric (perplexity) 1.5x the base's, a quality rate (degenerate generations) over 20%;
 * each claimed only when the point is past the limit beyond the noise.
 */
/** What a goal asks; see ReportConfigSchema.goals. */
export interface GoalConfig {
  name: string;
  /** Keep the most of these parents' skills, by the worst of their retentions. */
  keep?: string[];
  /** Or: the best score on this metric (suite.metric). */
  maximize?: MetricKey;
  /** Consider only these variants. */
  variants?: string[];
}

/** A point the experiment marks for reference (`report.highlight`), e.g. the seed's own setting. */
export interface HighlightConfig {
  label: string;
  variant?: string;
  axes?: Record<string, string | number | boolean | null>;
}

export interface CollapseThresholds {
  /** Flag a skill score below this fraction of the best parent's score on that skill. */
  parentFraction: number;
  /** Flag a skill score below the base model's (minus `baseMargin`). */
  belowBase: boolean;
  /** Absolute slack for the below-base rule, so eval noise of a point or two need not flag. */
  baseMargin: number;
  /** Flag when a suite's headline quality metric (perplexity) is this factor worse than the base's (the best parent's when no base). */
  perplexityFactor: number;
  /** Flag when a quality rate (a proportion, e.g. degenerate_rate) is worse than this. */
  degenerateRate: number;
}

export const DEFAULT_THRESHOLDS: CollapseThresholds = {
  parentFraction: 0.5,
  belowBase: true,
  baseMargin: 0,
  perplexityFactor: 1.5,
  degenerateRate: 0.2,
};

/** When a diagnostic is worth a line on a flagged point. */
export interface StandoutThresholds {
  /** Merged delta norm at least this many times a parent's (per layer run or in total). */
  highRel: number;
  /** Merged delta norm at most this fraction of a parent's: that parent's contribution was lost. */
  lowRel: number;
  /** Sign-conflict fraction worth naming. */
  signConflict: number;
  /** At most this many lines per point. */
  max: number;
}

export const DEFAULT_STANDOUTS: StandoutThresholds = { highRel: 1.5, lowRel: 0.5, signConflict: 0.3, max: 5 };

export interface ReportOptions {
  /** Where to write index.html, results.csv/json and charts/ (default: the experiment folder). */
  outDir?: string;
  /** Point ids (ResultRecord.point) whose per-layer diagnostics are charted even if not flagged. */
  select?: string[];
  collapse?: Partial<CollapseThresholds>;
  standouts?: Partial<StandoutThresholds>;
  /** Generations shown per flagged point (default 3). */
  samplesPerPoint?: number;
  /** Points in the per-layer diagnostics chart at most (selected ones always, then the worst collapsed; default 40). */
  maxDiagnosticPoints?: number;
  /** Render charts/*.svg (default true). */
  svg?: boolean;
  /** Variant -> parents whose skills it is meant to keep (see ReportConfigSchema.expect). */
  expect?: Record<string, string[]>;
  /** How the page draws its charts (default canvas: much faster with hundreds of points). */
  renderer?: 'canvas' | 'svg';
  /** What the recommendation serves (see ReportConfigSchema.goals). */
  goals?: GoalConfig[];
  /** Settings shown beside the recommendation (see ReportConfigSchema.highlight). */
  highlight?: HighlightConfig[];
  /** Seed, replicates and confidence level of every interval. */
  noise?: Partial<NoiseOptions>;
}

/**
 * The `report:` block of an experiment file (and of reports/EXP/experiment.json). Exported so the
 * experiment schema can embed it; snake_case keys are accepted because recipes are mergekit YAML.
 */
export const ReportConfigSchema = z
  .object({
    select: z.array(z.string()).optional(),
    collapse: z
      .object({
        parentFraction: z.number().min(0).max(10).optional(),
        belowBase: z.boolean().optional(),
        baseMargin: z.number().min(0).optional(),
        perplexityFactor: z.number().positive().optional(),
        degenerateRate: z.number().min(0).max(1).optional(),
      })
      .strict()
      .optional(),
    standouts: z
      .object({
        highRel: z.number().positive().optional(),
        lowRel: z.number().positive().optional(),
        signConflict: z.number().min(0).max(1).optional(),
        max: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
    samplesPerPoint: z.number().int().min(0).optional(),
    maxDiagnosticPoints: z.number().int().min(0).optional(),
    svg: z.boolean().optional(),
    /**
     * Variant -> the parents whose skills it is meant to keep. A merge of the math model alone
     * is not a collapse because it cannot chat: skill rules are checked only on metrics whose
     * best parent is listed. Variants not named here are held to every parent's skill.
     */
    expect: z.record(z.string(), z.array(z.string()).min(1)).optional(),
    /**
     * What the recommendation serves, one recommendation per goal: `keep` (parents whose skills
     * to keep the most of, by the worst per-parent share kept; the default goal keeps every
     * parent's) or `maximize` (a suite.metric, in its declared direction); `variants` limits the
     * candidates.
     */
    goals: z
      .array(
        z.object({
          name: z.string().min(1),
          keep: z.array(z.string()).min(1).optional(),
          maximize: z.string().regex(/^[^.]+\..+$/, 'expected suite.metric, e.g. math.exact_match_strict').optional(),
          variants: z.array(z.string()).min(1).optional(),
        }).strict().refine((g) => (g.keep === undefined) !== (g.maximize === undefined), 'expected either keep (parents) or maximize (a metric), not both or neither'),
      )
      .min(1)
      .optional(),
    /**
     * Settings shown beside the recommendation, each with its interval and its difference from
     * it (e.g. the setting a model card published): a label, the variant, and the axis values
     * that pick it (axes left out match any value; seeds are pooled).
     */
    highlight: z
      .array(z.object({ label: z.string().min(1), variant: z.string().optional(), axes: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])).optional() }).strict())
      .optional(),
    /** Bootstrap seed (recorded on the page), replicates and confidence level of every interval. */
    noise: z
      .object({ seed: z.number().int().min(0).optional(), replicates: z.number().int().min(200).max(100000).optional(), level: z.number().gt(0.5).lt(1).optional() })
      .strict()
      .optional(),
  })
  .strict();
export type ReportConfig = z.infer<typeof ReportConfigSchema>;

const snakeToCamel = (s: string): string => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Fields whose keys are user names (variants, axes), not option names: never renamed. */
const NAME_KEYED = new Set(['expect', 'axes']);

/** Recursively rename snake_case keys to camelCase (values, and the keys of NAME_KEYED maps, untouched). */
export function camelizeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelizeKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>).map(([k, x]) => [snakeToCamel(k), NAME_KEYED.has(k) ? x : camelizeKeys(x)]),
    );
  }
  return v;
}

export interface ResolvedOptions {
  select: string[];
  collapse: CollapseThresholds;
  standouts: StandoutThresholds;
  samplesPerPoint: number;
  maxDiagnosticPoints: number;
  svg: boolean;
  expect: Record<string, string[]>;
  /** Empty: the default goal (keep every parent's skill). */
  goals: GoalConfig[];
  highlight: HighlightConfig[];
  noise: NoiseOptions;
}

/** Explicit options win over the experiment's report block, which wins over defaults. */
export function resolveOptions(fromExperiment: ReportConfig | undefined, opts: ReportOptions = {}): ResolvedOptions {
  const e = fromExperiment ?? {};
  const drop = <T extends object>(o: T | undefined): Partial<T> =>
    Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    select: [...new Set([...(e.select ?? []), ...(opts.select ?? [])])],
    collapse: { ...DEFAULT_THRESHOLDS, ...drop(e.collapse), ...drop(opts.collapse) },
    standouts: { ...DEFAULT_STANDOUTS, ...drop(e.standouts), ...drop(opts.standouts) },
    samplesPerPoint: opts.samplesPerPoint ?? e.samplesPerPoint ?? 3,
    maxDiagnosticPoints: opts.maxDiagnosticPoints ?? e.maxDiagnosticPoints ?? 40,
    svg: opts.svg ?? e.svg ?? true,
    expect: { ...(e.expect ?? {}), ...(opts.expect ?? {}) },
    goals: opts.goals ?? e.goals ?? [],
    highlight: opts.highlight ?? e.highlight ?? [],
    noise: { ...DEFAULT_NOISE, ...drop(e.noise), ...drop(opts.noise) },
  };
}
