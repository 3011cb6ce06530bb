import { z } from 'zod';

/**
 * What makes a point "collapsed". Defaults follow issue 5: half the best parent, any drop below the
 * base, perplexity 1.5x the base's, more than 20% degenerate generations.
 */
export interface CollapseThresholds {
  /** Flag a skill score below this fraction of the best parent's score on that skill. */
  parentFraction: number;
  /** Flag a skill score below the base model's (minus `baseMargin`). */
  belowBase: boolean;
  /** Absolute slack for the below-base rule, so eval noise of a point or two need not flag. */
  baseMargin: number;
  /** Flag when perplexity exceeds this factor times the base's (the best parent's when no base). */
  perplexityFactor: number;
  /** Flag when any suite's degenerate_rate exceeds this. */
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
  })
  .strict();
export type ReportConfig = z.infer<typeof ReportConfigSchema>;

const snakeToCamel = (s: string): string => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Fields whose keys are user names (variants), not option names: never renamed. */
const NAME_KEYED = new Set(['expect']);

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
  };
}
