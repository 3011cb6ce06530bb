/**
 * Which recipe to use: every merge setting (its seeds together) scored with intervals, each
 * parent's skill and how much of it a setting keeps, the goals an experiment names, the setting
 * that serves each goal best, the settings not worse than it within the noise, the points the
 * experiment marks for reference, and the Pareto front of two skills. Pure: records in, numbers out.
 */
import type { ResultRecord } from '../results/record.js';
import { groupBySetting, type SettingGroup } from './aggregate.js';
import type { References } from './collapse.js';
import type { GoalConfig, HighlightConfig } from './options.js';
import { formatAxisValue, headlineSkills, metricValue, okMerges, type MetricInfo, type MetricKey } from './metrics.js';
import { refKey, type Noise, type ShownInterval } from './noise.js';
import { combine, verdict, type Interval, type Verdict } from './stats.js';

export interface Scored {
  value: number;
  /** How it was computed when shown beside one score (Wilson or bootstrap); absent on derived numbers. */
  interval?: Interval & { method?: ShownInterval['method'] };
}

/** A parent and the skill it is the best parent on (its suite's headline skill). */
export type { GoalConfig, HighlightConfig } from './options.js';

export interface SkillOwner {
  parent: string;
  metric: MetricInfo;
  value: number;
}

export interface SettingRow {
  group: SettingGroup;
  scores: Record<MetricKey, Scored>;
  /** Parent -> the share of its skill kept (worst over its skills). */
  retention: Record<string, Scored>;
}

export interface Ranked {
  row: SettingRow;
  objective: Scored;
  /** Against the recommendation: objective difference (this minus it) and what it means. */
  diff?: Interval;
  verdict?: Verdict;
}

export interface Recommendation {
  goal: GoalConfig;
  /** How the goal is scored, in words. */
  objective: string;
  higherIsBetter: boolean;
  best: Ranked;
  /** Settings not worse than the recommendation within the noise, best first. */
  peers: Ranked[];
  /** Every candidate, best first. */
  ranked: Ranked[];
  highlights: { label: string; ranked: Ranked }[];
  /** Highlight entries that match no setting. */
  unmatched: string[];
}

const ratio = (m: MetricInfo) => (v: number, p: number): number => (m.higherIsBetter ? v / p : p / v);

export class Scoreboard {
  readonly owners: SkillOwner[];
  readonly rows: SettingRow[];
  private readonly refRecords: Map<string, ResultRecord[]>;

  constructor(records: readonly ResultRecord[], readonly metrics: readonly MetricInfo[], readonly refs: References, readonly noise: Noise) {
    this.refRecords = refs.parents;
    this.owners = headlineSkills(metrics).flatMap((m) => {
      const best = refs.bestParent(m);
      return best && best.value > 0 ? [{ parent: best.name, metric: m, value: best.value }] : [];
    });
    this.rows = groupBySetting(okMerges(records)).map((group) => {
      const scores: Record<MetricKey, Scored> = {};
      for (const m of metrics) {
        const vs = group.records.map((r) => metricValue(r, m.key)).filter((v): v is number => v !== undefined);
        if (vs.length !== group.records.length) continue;
        scores[m.key] = { value: vs.reduce((a, b) => a + b, 0) / vs.length, interval: noise.interval(group.records, m, group.key) };
      }
      const row: SettingRow = { group, scores, retention: {} };
      for (const p of this.parents()) {
        const value = this.retentionValue(row, p);
        if (value === undefined) continue;
        const reps = this.retentionReps(row, p);
        row.retention[p] = { value, interval: reps ? noise.spread(reps) : undefined };
      }
      return row;
    });
  }

  /** Parents that own a skill, in skill order. */
  parents(): string[] {
    return [...new Set(this.owners.map((o) => o.parent))];
  }

  scoreReps(row: SettingRow, m: MetricInfo): Float64Array | undefined {
    return this.noise.mean(row.group.records, m, row.group.key);
  }

  parentReps(parent: string, m: MetricInfo): Float64Array | undefined {
    return this.noise.mean(this.refRecords.get(parent) ?? [], m, refKey(parent));
  }

  private retentionValue(row: SettingRow, parent: string): number | undefined {
    const mine = this.owners.filter((o) => o.parent === parent);
    const rs = mine.map((o) => (row.scores[o.metric.key] ? ratio(o.metric)(row.scores[o.metric.key].value, o.value) : undefined));
    return rs.length && rs.every((v) => v !== undefined && Number.isFinite(v)) ? Math.min(...(rs as number[])) : undefined;
  }

  retentionReps(row: SettingRow, parent: string): Float64Array | undefined {
    const parts = this.owners.filter((o) => o.parent === parent).map((o) => combine([this.scoreReps(row, o.metric), this.parentReps(parent, o.metric)], ratio(o.metric)));
    return parts.length ? combine(parts, Math.min) : undefined;
  }

  /** The objective of a goal: value, replicates and direction. */
  objective(goal: GoalConfig): { describe: string; higherIsBetter: boolean; value(row: SettingRow): number | undefined; reps(row: SettingRow): Float64Array | undefined } {
    if (goal.maximize) {
      const m = this.metrics.find((x) => x.key === goal.maximize);
      if (!m) return { describe: `${goal.maximize} (not measured)`, higherIsBetter: true, value: () => undefined, reps: () => undefined };
      return { describe: `${m.key} (${m.higherIsBetter ? 'highest' : 'lowest'})`, higherIsBetter: m.higherIsBetter, value: (row) => row.scores[m.key]?.value, reps: (row) => this.scoreReps(row, m) };
    }
    const keep = (goal.keep ?? this.parents()).filter((p) => this.parents().includes(p));
    const describe = keep.length > 1 ? `the worst of the shares kept of ${keep.map((p) => `${p}'s`).join(' and ')} skill` : `the share kept of ${keep[0] ?? '(no parent)'}'s skill`;
    return {
      describe,
      higherIsBetter: true,
      value: (row) => {
        const vs = keep.map((p) => row.retention[p]?.value);
        return keep.length && vs.every((v) => v !== undefined) ? Math.min(...(vs as number[])) : undefined;
      },
      reps: (row) => (keep.length ? combine(keep.map((p) => this.retentionReps(row, p)), Math.min) : undefined),
    };
  }

  /** The recommended setting of one goal, its peers within noise, and the highlighted settings beside it. */
  recommend(goal: GoalConfig, highlights: readonly HighlightConfig[] = []): Recommendation | undefined {
    const obj = this.objective(goal);
    const cands = this.rows.filter((r) => !goal.variants || goal.variants.includes(r.group.variant));
    const scored = cands.flatMap((row) => {
      const value = obj.value(row);
      return value === undefined ? [] : [{ row, value }];
    });
    if (!scored.length) return undefined;
    const sign = obj.higherIsBetter ? 1 : -1;
    scored.sort((a, b) => sign * (b.value - a.value));
    const bestReps = obj.reps(scored[0].row);
    const rank = (row: SettingRow, value: number): Ranked => {
      const reps = obj.reps(row);
      const objective: Scored = { value, interval: reps ? this.noise.spread(reps) : undefined };
      if (row === scored[0].row) return { row, objective };
      const d = bestReps && reps ? combine([reps, bestReps], (a, b) => a - b) : undefined;
      const diff = d ? this.noise.spread(d) : undefined;
      return { row, objective, diff, verdict: diff ? verdict(diff, obj.higherIsBetter) : value === scored[0].value ? 'within noise' : undefined };
    };
    const ranked = scored.map(({ row, value }) => rank(row, value));
    const marked: { label: string; ranked: Ranked }[] = [];
    const unmatched: string[] = [];
    for (const h of highlights) {
      const hits = ranked.filter((x) => matches(x.row, h));
      if (!hits.length) unmatched.push(h.label);
      for (const x of hits) marked.push({ label: h.label, ranked: x });
    }
    return {
      goal,
      objective: obj.describe,
      higherIsBetter: obj.higherIsBetter,
      best: ranked[0],
      peers: ranked.slice(1).filter((x) => x.verdict === 'within noise'),
      ranked,
      highlights: marked,
      unmatched,
    };
  }
}

/** A setting matches a highlight when it is of its variant (if named) and has each named axis value. */
export function matches(row: SettingRow, h: HighlightConfig): boolean {
  if (h.variant !== undefined && row.group.variant !== h.variant) return false;
  return Object.entries(h.axes ?? {}).every(([a, v]) => formatAxisValue(row.group.axes[a]) === formatAxisValue(v));
}

/** The default goal: keep the most of every parent's skill, by the worst per-parent retention. */
export function defaultGoals(board: Scoreboard): GoalConfig[] {
  if (board.parents().length) return [{ name: "keep every parent's skill" }];
  const first = board.metrics.find((m) => m.role === 'skill') ?? board.metrics[0];
  return first ? [{ name: `best ${first.key}`, maximize: first.key }] : [];
}

/**
 * Settings on the Pareto front of two metrics (no other setting at least as good on both and
 * better on one), ordered along the first.
 */
export function paretoFront(rows: readonly SettingRow[], x: MetricInfo, y: MetricInfo): SettingRow[] {
  const sx = x.higherIsBetter ? 1 : -1, sy = y.higherIsBetter ? 1 : -1;
  const pts = rows.filter((r) => r.scores[x.key] && r.scores[y.key]);
  const front = pts.filter((a) => !pts.some((b) => {
    const bx = sx * b.scores[x.key].value, ax = sx * a.scores[x.key].value;
    const by = sy * b.scores[y.key].value, ay = sy * a.scores[y.key].value;
    return bx >= ax && by >= ay && (bx > ax || by > ay);
  }));
  return front.sort((a, b) => a.scores[x.key].value - b.scores[x.key].value);
}
