/**
 * Noise on every number: bootstrap replicates of each record's scores, from which every interval
 * and every "better / worse / within noise" of the page is read.
 *
 * - A suite is paired when every record scored it on the same items (recorded per-item outcomes
 *   with identical ids): replicate b of every record resamples the same item indices, so any
 *   difference between two points, or a point and a parent, is compared item by item.
 * - Otherwise (records written before per-item outcomes were kept) each record is resampled on
 *   its own: its items when it has them, else a proportion of n items is drawn from its Jeffreys
 *   posterior Beta(k + 1/2, n - k + 1/2). Such comparisons are unpaired, and wider.
 * - A metric with neither per-item outcomes nor an item count has no noise model: its numbers
 *   are shown without an interval and never called beyond noise.
 * - Seeds of one setting are resampled too (a mean over S seeds draws S seeds with replacement).
 *
 * Every draw comes from the recorded seed, through a stream named after what it draws for, so
 * the page is the same whatever order the records come in.
 */
import type { ResultRecord } from '../results/record.js';
import { itemCount, metricValue, type MetricInfo } from './metrics.js';
import { betaDraw, normalStream, percentileInterval, streamFor, wilson, type Interval } from './stats.js';

export interface NoiseOptions {
  /** Seed of every bootstrap draw (recorded on the page). */
  seed: number;
  /** Bootstrap replicates per estimate. */
  replicates: number;
  /** Confidence level of every interval. */
  level: number;
}

/** The resampling key of a reference model's records, shared by every comparison with it. */
export const refKey = (name: string): string => `ref\u0000${name}`;

export const DEFAULT_NOISE: NoiseOptions = { seed: 1, replicates: 2000, level: 0.95 };

export type IntervalMethod = 'wilson' | 'bootstrap over items' | 'bootstrap over items and seeds' | 'Jeffreys draws' | 'Jeffreys draws and seeds';

export interface ShownInterval extends Interval {
  method: IntervalMethod;
}

export interface SuitePairing {
  suite: string;
  paired: boolean;
  /** Why a suite is not paired (which records lack per-item outcomes, or differ in items). */
  reason?: string;
  items?: number;
}

export class Noise {
  readonly opts: NoiseOptions;
  private readonly pairing = new Map<string, SuitePairing>();
  private readonly sharedIdx = new Map<string, Uint32Array>();
  private readonly memo = new Map<string, Float64Array | undefined>();

  constructor(records: readonly ResultRecord[], metrics: readonly MetricInfo[], opts: Partial<NoiseOptions> = {}) {
    this.opts = { ...DEFAULT_NOISE, ...opts };
    const ok = records.filter((r) => r.status === 'ok');
    for (const suite of new Set(metrics.map((m) => m.suite))) {
      const scored = ok.filter((r) => r.metrics[suite]);
      const lacking = scored.filter((r) => !r.items?.[suite]);
      if (!scored.length) continue;
      if (lacking.length) {
        this.pairing.set(suite, { suite, paired: false, reason: `${lacking.length} of ${scored.length} records carry no per-item outcomes` });
        continue;
      }
      const ids = JSON.stringify(scored[0].items![suite].ids);
      const differ = scored.filter((r) => JSON.stringify(r.items![suite].ids) !== ids).length;
      this.pairing.set(suite, differ
        ? { suite, paired: false, reason: `${differ} of ${scored.length} records were scored on other items` }
        : { suite, paired: true, items: scored[0].items![suite].ids.length });
    }
  }

  /** How each suite's comparisons are made. */
  suites(): SuitePairing[] {
    return [...this.pairing.values()];
  }

  paired(suite: string): boolean {
    return this.pairing.get(suite)?.paired === true;
  }

  private indices(suite: string, n: number, point: string | null): Uint32Array {
    const key = point === null ? suite : `${suite}\u0000${point}`;
    let idx = point === null ? this.sharedIdx.get(key) : undefined;
    if (idx) return idx;
    const u = streamFor(this.opts.seed, 'items', suite, ...(point === null ? [] : [point]));
    idx = new Uint32Array(this.opts.replicates * n);
    for (let i = 0; i < idx.length; i++) idx[i] = Math.floor(u() * n);
    if (point === null) this.sharedIdx.set(key, idx);
    return idx;
  }

  /** Bootstrap replicates of one record's score; undefined when nothing says how noisy it is. */
  record(r: ResultRecord, m: MetricInfo): Float64Array | undefined {
    const key = `${r.point}\u0000${m.key}`;
    if (this.memo.has(key)) return this.memo.get(key);
    const out = this.compute(r, m);
    this.memo.set(key, out);
    return out;
  }

  private compute(r: ResultRecord, m: MetricInfo): Float64Array | undefined {
    if (metricValue(r, m.key) === undefined) return undefined;
    const B = this.opts.replicates;
    const items = r.items?.[m.suite];
    const values = items?.values[m.metric];
    if (items && values) {
      const n = values.length;
      const idx = this.indices(m.suite, n, this.paired(m.suite) ? null : r.point);
      const w = m.aggregation === 'proportion' ? undefined : items.weights[m.metric];
      const out = new Float64Array(B);
      // The hot loop of the report: one pass over the shared index table, no call per replicate.
      for (let b = 0, o = 0; b < B; b++, o += n) {
        let num = 0, den = 0;
        for (let j = 0; j < n; j++) {
          const i = idx[o + j];
          num += values[i];
          den += w ? w[i] : 1;
        }
        out[b] = m.aggregation === 'exp_ratio' ? Math.exp(num / den) : num / den;
      }
      return out;
    }
    const n = itemCount(r, m.suite);
    if (m.aggregation !== 'proportion' || n === undefined) return undefined;
    const k = Math.round(metricValue(r, m.key)! * n);
    const u = streamFor(this.opts.seed, 'jeffreys', r.point, m.key);
    const z = normalStream(u);
    const out = new Float64Array(B);
    for (let b = 0; b < B; b++) out[b] = betaDraw(k + 0.5, n - k + 0.5, u, z);
    return out;
  }

  /** Every record has per-item outcomes of this metric on the suite's shared items: its means can be resampled item by item. */
  private byItems(rs: readonly ResultRecord[], m: MetricInfo): boolean {
    return this.paired(m.suite) && rs.every((r) => r.items?.[m.suite]?.values[m.metric] !== undefined);
  }

  /**
   * Without shared items, records of one suite were still scored on the same items, so their item
   * noise does not average out over seeds or settings: a mean of records is drawn as one score of
   * n items (Jeffreys), never as an average of independent draws, which would be too narrow.
   */
  private meanDraws(rs: readonly ResultRecord[], m: MetricInfo, key: string): Float64Array | undefined {
    const vs = rs.map((r) => metricValue(r, m.key));
    const ns = rs.map((r) => itemCount(r, m.suite));
    if (m.aggregation !== 'proportion' || vs.some((v) => v === undefined) || ns.some((n) => n === undefined)) return undefined;
    const n = Math.min(...(ns as number[]));
    const p = (vs as number[]).reduce((a, b) => a + b, 0) / vs.length;
    const u = streamFor(this.opts.seed, 'jeffreys-mean', key, m.key);
    const z = normalStream(u);
    const out = new Float64Array(this.opts.replicates);
    for (let b = 0; b < out.length; b++) out[b] = betaDraw(p * n + 0.5, (1 - p) * n + 0.5, u, z) - p;
    return out;
  }

  /**
   * Replicates of the mean over records (the seeds of one setting), seeds resampled with
   * replacement, named by `key` so the draws do not depend on the caller's order.
   */
  mean(rs: readonly ResultRecord[], m: MetricInfo, key: string): Float64Array | undefined {
    if (!rs.length) return undefined;
    if (rs.length === 1) return this.record(rs[0], m);
    const B = this.opts.replicates;
    const u = streamFor(this.opts.seed, 'seeds', key, m.key);
    const out = new Float64Array(B);
    if (this.byItems(rs, m)) {
      const reps = rs.map((r) => this.record(r, m)!);
      for (let b = 0; b < B; b++) {
        let s = 0;
        for (let j = 0; j < rs.length; j++) s += reps[Math.floor(u() * rs.length)][b];
        out[b] = s / rs.length;
      }
      return out;
    }
    // Seeds resampled from their scores; the items' noise added once, as for one score.
    const noise = this.meanDraws(rs, m, key);
    if (!noise) return undefined;
    const vs = rs.map((r) => metricValue(r, m.key)!);
    for (let b = 0; b < B; b++) {
      let s = 0;
      for (let j = 0; j < rs.length; j++) s += vs[Math.floor(u() * rs.length)];
      out[b] = Math.min(1, Math.max(0, s / rs.length + noise[b]));
    }
    return out;
  }

  /** Replicates of the plain mean over records, without resampling them (records are the population, e.g. all points at one level of an axis). */
  average(rs: readonly ResultRecord[], m: MetricInfo): Float64Array | undefined {
    if (!rs.length) return undefined;
    if (this.byItems(rs, m)) {
      const reps = rs.map((r) => this.record(r, m)!);
      const out = new Float64Array(this.opts.replicates);
      for (const x of reps) for (let b = 0; b < out.length; b++) out[b] += x[b] / reps.length;
      return out;
    }
    if (rs.length === 1) return this.record(rs[0], m);
    const noise = this.meanDraws(rs, m, rs.map((r) => r.point).join('\u0000'));
    if (!noise) return undefined;
    const p = rs.reduce((a, r) => a + metricValue(r, m.key)!, 0) / rs.length;
    return noise.map((d) => Math.min(1, Math.max(0, p + d)));
  }

  /** The interval shown beside a setting's mean score: Wilson for one record's proportion, else the bootstrap's. */
  interval(rs: readonly ResultRecord[], m: MetricInfo, key: string): ShownInterval | undefined {
    if (rs.length === 1 && m.aggregation === 'proportion') {
      const n = itemCount(rs[0], m.suite);
      const v = metricValue(rs[0], m.key);
      if (n !== undefined && v !== undefined) return { ...wilson(Math.round(v * n), n, this.opts.level), method: 'wilson' };
    }
    const reps = this.mean(rs, m, key);
    if (!reps) return undefined;
    const method: IntervalMethod = this.byItems(rs, m) ? (rs.length > 1 ? 'bootstrap over items and seeds' : 'bootstrap over items') : rs.length > 1 ? 'Jeffreys draws and seeds' : 'Jeffreys draws';
    return { ...percentileInterval(reps, this.opts.level), method };
  }

  /** Percentile interval of any replicate array at the page's level. */
  spread(reps: ArrayLike<number>): Interval {
    return percentileInterval(reps, this.opts.level);
  }
}
