/**
 * Explanations the report computes from the records, per variant: which factor moves each
 * headline score (an effect table with intervals), in which stage a chain loses a skill (against
 * a variant that evaluates its earlier stage alone, matched setting by setting and seed by seed),
 * and how the merge diagnostics change along the factor that matters. Each comes with sentences
 * generated from the numbers. Pure.
 */
import { parseAllDocuments } from 'yaml';
import type { ResultRecord } from '../results/record.js';
import { settingKey } from './aggregate.js';
import { parseDiagnostics } from './diagnostics.js';
import { crossed, factorsOf, levelsLabel, type Factor } from './factors.js';
import { fmtScore, fmtInterval, fmtChange } from './format.js';
import { headlineSkills, metricValue, okMerges, seedOf, type MetricInfo } from './metrics.js';
import type { Noise } from './noise.js';
import type { Scored } from './recommend.js';
import { combine, percentileInterval, streamFor, verdict, type Interval, type Verdict } from './stats.js';

export interface LevelEffect {
  level: string;
  points: number;
  score: Scored;
  /** This level minus the best level of the factor (absent for the best level itself). */
  change?: { value: number; interval?: Interval; verdict?: Verdict };
}

export interface FactorEffect {
  factor: Factor;
  metric: MetricInfo;
  levels: LevelEffect[];
  best: string;
  /** Largest gap between two levels' means. */
  range: number;
  /** Every combination of this factor's levels with the others' was run (marginal means compare like with like). */
  balanced: boolean;
}

export interface StageRow {
  /** The chain's setting, seeds matched to the earlier stage's. */
  label: string;
  setting: string;
  seeds: (number | null)[];
  metric: MetricInfo;
  earlier: Scored;
  full: Scored;
  change: { value: number; interval?: Interval; verdict?: Verdict };
}

export interface StageLoss {
  variant: string;
  /** The variant that evaluates the earlier stage alone. */
  prefix: string;
  earlierStage: string;
  lastStage: string;
  /** Axes the two variants share (matched value for value). */
  shared: string[];
  rows: StageRow[];
}

export interface DiagnosticTrend {
  factor: Factor;
  /** Where the other factors are held: the levels of the reference setting. */
  heldAt: string;
  heldWhy: string;
  entry: string;
  series: { what: string; model: string | null; values: { level: string; value: number; points: number }[] }[];
  /** The diagnostic that tracks the score most closely over all of the variant's points. */
  tracks?: { metric: MetricInfo; what: string; model: string | null; rho: number; interval?: Interval; points: number };
}

export interface VariantExplanation {
  variant: string;
  points: number;
  effects: FactorEffect[];
  stage?: StageLoss;
  /** Along the (at most two) factors that move the first explained skill most. */
  diagnostics: DiagnosticTrend[];
  /** Generated sentences: which factors move each metric, where a chain loses a skill, what the diagnostics show. */
  text: { effects: string[]; stage: string[]; diagnostics: string[] };
}

/** Stage names of a (multi-document) recipe, in file order; unnamed stages are numbered. */
export function stageNames(recipe: string | null): string[] {
  if (!recipe) return [];
  return parseAllDocuments(recipe).flatMap((d, i) => {
    if (!('toJS' in d)) return [];
    const js = d.toJS() as { name?: unknown } | null;
    return js ? [typeof js.name === 'string' ? js.name : `stage ${i + 1}`] : [];
  });
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Metrics an explanation covers: headline skills, then headline quality metrics that vary. */
export function explainedMetrics(metrics: readonly MetricInfo[], records: readonly ResultRecord[]): MetricInfo[] {
  const varies = (m: MetricInfo): boolean => new Set(records.map((r) => metricValue(r, m.key)).filter((v) => v !== undefined)).size > 1;
  return [...headlineSkills(metrics), ...metrics.filter((m) => m.headline && m.role === 'quality' && varies(m))];
}

/** The effect of each factor of a variant on one metric: marginal mean per level and its change from the best level. */
export function factorEffects(records: readonly ResultRecord[], factors: readonly Factor[], m: MetricInfo, noise: Noise): FactorEffect[] {
  const withM = records.filter((r) => metricValue(r, m.key) !== undefined);
  return factors.map((f) => {
    const at = new Map(f.levels.map((l) => [l, withM.filter((r) => f.levelOf(r) === l)] as const));
    const stats = f.levels.filter((l) => at.get(l)!.length).map((l) => {
      const rs = at.get(l)!;
      const reps = noise.average(rs, m);
      return { level: l, rs, reps, value: mean(rs.map((r) => metricValue(r, m.key)!)) };
    });
    const sign = m.higherIsBetter ? 1 : -1;
    const best = stats.reduce((a, b) => (sign * b.value > sign * a.value ? b : a));
    const levels: LevelEffect[] = stats.map((s) => {
      const score: Scored = { value: s.value, interval: s.reps ? noise.spread(s.reps) : undefined };
      if (s === best) return { level: s.level, points: s.rs.length, score };
      const d = s.reps && best.reps ? combine([s.reps, best.reps], (a, b) => a - b) : undefined;
      const interval = d ? noise.spread(d) : undefined;
      return { level: s.level, points: s.rs.length, score, change: { value: s.value - best.value, interval, verdict: judge(m, s.value - best.value, interval) } };
    });
    const values = stats.map((s) => s.value);
    const others = factors.filter((g) => g !== f);
    return { factor: f, metric: m, levels, best: best.level, range: Math.max(...values) - Math.min(...values), balanced: others.every((g) => crossed(withM, f, g)) };
  });
}

/**
 * The last stage's effect on a chain: each setting of `variant` against the records of `prefix`
 * (which evaluates the earlier stage alone) at the same values of their shared axes and the same
 * seed, on each skill the earlier stage is meant to keep.
 */
export function stageLoss(variant: string, records: readonly ResultRecord[], metrics: readonly MetricInfo[], noise: Noise, expect: Readonly<Record<string, readonly string[]>>, skillOwner: (m: MetricInfo) => string | undefined): StageLoss | undefined {
  const merges = okMerges(records);
  const mine = merges.filter((r) => r.variant === variant);
  const stages = stageNames(mine[0]?.recipe ?? null);
  if (stages.length < 2) return undefined;
  const earlier = stages.slice(0, -1);
  const byVariant = new Map<string, ResultRecord[]>();
  for (const r of merges) if (r.variant !== variant) byVariant.set(r.variant, [...(byVariant.get(r.variant) ?? []), r]);
  const found = [...byVariant.entries()].find(([, rs]) => earlier.includes(stageNames(rs[0].recipe).at(-1) ?? ''));
  if (!found) return undefined;
  const [prefix, prs] = found;
  const shared = [...new Set(prs.flatMap((r) => Object.keys(r.axes)))].filter((a) => a !== 'seed' && mine.every((r) => a in r.axes));
  const match = (r: ResultRecord): ResultRecord | undefined => prs.find((p) => seedOf(p) === seedOf(r) && shared.every((a) => JSON.stringify(p.axes[a]) === JSON.stringify(r.axes[a])));
  const kept = headlineSkills(metrics).filter((m) => !expect[prefix] || expect[prefix].includes(skillOwner(m) ?? ''));
  const factors = factorsOf(mine).filter((f) => f.name !== 'seed');
  const groups = new Map<string, { label: string; pairs: [ResultRecord, ResultRecord][] }>();
  for (const r of mine) {
    const p = match(r);
    if (!p) continue;
    const k = settingKey(r);
    if (!groups.has(k)) groups.set(k, { label: levelsLabel(r, factors), pairs: [] });
    groups.get(k)!.pairs.push([r, p]);
  }
  const rows: StageRow[] = [];
  for (const m of kept) {
    for (const [setting, g] of groups) {
      const full = g.pairs.map(([r]) => r), early = g.pairs.map(([, p]) => p);
      const vf = full.map((r) => metricValue(r, m.key)), ve = early.map((r) => metricValue(r, m.key));
      if ([...vf, ...ve].some((v) => v === undefined)) continue;
      const rf = noise.average(full, m), re = noise.average(early, m);
      const d = rf && re ? combine([rf, re], (a, b) => a - b) : undefined;
      const interval = d ? noise.spread(d) : undefined;
      const value = mean(vf as number[]) - mean(ve as number[]);
      rows.push({
        label: g.label, setting, seeds: full.map(seedOf), metric: m,
        earlier: { value: mean(ve as number[]), interval: re ? noise.spread(re) : undefined },
        full: { value: mean(vf as number[]), interval: rf ? noise.spread(rf) : undefined },
        change: { value, interval, verdict: judge(m, value, interval) },
      });
    }
  }
  return rows.length ? { variant, prefix, earlierStage: stageNames(prs[0].recipe).at(-1)!, lastStage: stages.at(-1)!, shared, rows } : undefined;
}

/** Ranks (average ranks for ties). */
function ranks(xs: readonly number[]): number[] {
  const order = xs.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const out = new Array<number>(xs.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1].v === order[i].v) j++;
    for (let k = i; k <= j; k++) out[order[k].i] = (i + j) / 2;
    i = j + 1;
  }
  return out;
}

/** Spearman's rank correlation; NaN when either side is constant. */
export function spearman(xs: readonly number[], ys: readonly number[]): number {
  const rx = ranks(xs), ry = ranks(ys);
  const mx = mean(rx), my = mean(ry);
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < rx.length; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx && syy ? sxy / Math.sqrt(sxx * syy) : NaN;
}

type DiagField = 'mergedDeltaRelToParent' | 'signAgreement' | 'retained' | 'signConflict';
const DIAG_WHAT: Record<DiagField, string> = {
  mergedDeltaRelToParent: 'delta norm / parent',
  signAgreement: 'sign agreement with parent',
  retained: 'share of the task vector kept',
  signConflict: 'sign conflict',
};

/** The entry an explanation reads: the final model against the original parents if recorded, else the last stage. */
function lastEntryTotals(r: ResultRecord): { entry: string; values: Map<string, number> } | undefined {
  const { stages } = parseDiagnostics(r.diagnostics);
  const st = stages.find((s) => (s as { kind?: unknown }).kind === 'final-vs-parents') ?? stages.at(-1);
  const t = st?.totals;
  if (!st || !t) return undefined;
  const values = new Map<string, number>();
  for (const f of ['mergedDeltaRelToParent', 'signAgreement', 'retained'] as const) {
    for (const [model, v] of Object.entries((t as Record<string, Record<string, number | null> | undefined>)[f] ?? {})) if (typeof v === 'number' && Number.isFinite(v)) values.set(`${f}\u0000${model}`, v);
  }
  if (typeof t.signConflict === 'number' && Number.isFinite(t.signConflict)) values.set('signConflict\u0000', t.signConflict);
  return { entry: st.stage, values };
}

/**
 * How the diagnostics move along `factor` with the other factors held at `held`'s levels, and the
 * diagnostic whose ranks follow the metric's most closely over all the variant's points (with a
 * bootstrap-over-points interval on Spearman's rho).
 */
export function diagnosticTrend(records: readonly ResultRecord[], factor: Factor, factors: readonly Factor[], held: ResultRecord, heldWhy: string, m: MetricInfo, seed: number, level: number): DiagnosticTrend | undefined {
  const withDiag = records.map((r) => ({ r, d: lastEntryTotals(r) })).filter((x): x is { r: ResultRecord; d: NonNullable<ReturnType<typeof lastEntryTotals>> } => x.d !== undefined);
  if (withDiag.length < 3) return undefined;
  const others = factors.filter((f) => f !== factor && f.name !== 'seed');
  const line = withDiag.filter(({ r }) => others.every((f) => f.levelOf(r) === f.levelOf(held)));
  const fields = [...new Set(withDiag.flatMap(({ d }) => [...d.values.keys()]))];
  const series: DiagnosticTrend['series'] = [];
  for (const key of fields) {
    const [field, model] = key.split('\u0000') as [DiagField, string];
    const values = factor.levels.flatMap((l) => {
      const vs = line.filter(({ r }) => factor.levelOf(r) === l).map(({ d }) => d.values.get(key)).filter((v): v is number => v !== undefined);
      return vs.length ? [{ level: l, value: mean(vs), points: vs.length }] : [];
    });
    const vs = values.map((v) => v.value);
    // Only what moves along the factor explains anything.
    if (values.length > 1 && Math.max(...vs) - Math.min(...vs) > 0.05 * Math.max(...vs.map(Math.abs))) series.push({ what: DIAG_WHAT[field], model: model || null, values });
  }
  let tracks: DiagnosticTrend['tracks'];
  const scored = withDiag.filter(({ r }) => metricValue(r, m.key) !== undefined);
  for (const key of fields) {
    const pts = scored.filter(({ d }) => d.values.has(key));
    if (pts.length < 5) continue;
    const xs = pts.map(({ d }) => d.values.get(key)!), ys = pts.map(({ r }) => metricValue(r, m.key)!);
    const rho = spearman(xs, ys);
    if (!Number.isFinite(rho) || (tracks && Math.abs(rho) <= Math.abs(tracks.rho))) continue;
    const [field, model] = key.split('\u0000') as [DiagField, string];
    tracks = { metric: m, what: DIAG_WHAT[field], model: model || null, rho, points: pts.length, interval: rhoInterval(xs, ys, seed, `${m.key}\u0000${key}`, level) };
  }
  if (!series.length && !tracks) return undefined;
  return { factor, heldAt: levelsLabel(held, others), heldWhy, entry: line[0]?.d.entry ?? withDiag[0].d.entry, series, tracks };
}

function rhoInterval(xs: readonly number[], ys: readonly number[], seed: number, key: string, level: number): Interval {
  const u = streamFor(seed, 'spearman', key);
  const reps = new Float64Array(1000);
  const bx = new Array<number>(xs.length), by = new Array<number>(xs.length);
  for (let b = 0; b < reps.length; b++) {
    for (let i = 0; i < xs.length; i++) {
      const j = Math.floor(u() * xs.length);
      bx[i] = xs[j];
      by[i] = ys[j];
    }
    reps[b] = spearman(bx, by);
  }
  return percentileInterval(reps, level);
}

/**
 * The verdict on a change, claimed only where the page can print it: paired on the same items, a
 * difference in the fourth decimal can exclude zero, and "worse" beside 0.000 reads as nonsense.
 */
export function judge(m: MetricInfo, value: number, interval: Interval | undefined): Verdict | undefined {
  if (!interval) return undefined;
  return fmtChange(m, value) === fmtScore(m, 0) ? 'within noise' : verdict(interval, m.higherIsBetter);
}

const join = (xs: readonly string[]): string => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

/** A sentence about which factors move a metric, largest effect first; what moves only within the noise is named as such. */
export function effectSentence(variant: string, points: number, effects: readonly FactorEffect[]): string | undefined {
  if (!effects.length) return undefined;
  const m = effects[0].metric;
  const sorted = [...effects].sort((a, b) => b.range - a.range);
  const gap = (e: FactorEffect): string => `${e.factor.name} ${fmtScore(m, e.range)}`;
  if (sorted.every((e) => e.levels.every((l) => !l.change || l.change.interval === undefined))) {
    return `In '${variant}' (${points} points), ${m.key} has no interval (its records carry neither per-item outcomes nor an item count); largest gaps between levels: ${join(sorted.map(gap))}.`;
  }
  const visible = (v: number): boolean => fmtChange(m, v) !== fmtScore(m, 0);
  // judge() already calls a change that prints as zero within noise.
  const worse = (l: FactorEffect['levels'][number]): boolean => l.change?.verdict === 'worse';
  const moving = sorted.filter((e) => e.levels.some(worse));
  const still = sorted.filter((e) => !moving.includes(e));
  const describe = (e: FactorEffect): string => {
    const sign = m.higherIsBetter ? 1 : -1;
    const worst = e.levels.reduce((a, b) => (sign * (b.change?.value ?? 0) < sign * (a.change?.value ?? 0) ? b : a));
    const bestL = e.levels.find((l) => l.level === e.best)!;
    const beyond = e.levels.filter(worse).length;
    return `${e.factor.name}: ${fmtScore(m, bestL.score.value)} at ${e.best} against ${fmtScore(m, worst.score.value)} at ${worst.level} (${fmtChange(m, worst.change?.value ?? 0)} ${fmtInterval(m, worst.change?.interval)}; ${beyond} of ${e.levels.length - 1} other level${e.levels.length > 2 ? 's' : ''} worse beyond noise${e.balanced ? '' : '; not fully crossed with the other factors'})`;
  };
  const head = moving.length ? `depends most on ${describe(moving[0])}${moving.slice(1).map((e) => `; then ${describe(e)}`).join('')}` : 'moves only within the noise of every factor';
  const tail = moving.length && still.length ? `. Within noise: ${join(still.map((e) => `${e.factor.name} (largest gap ${fmtScore(m, e.range)}${e.range === 0 || visible(e.range) ? '' : ', below the printed precision'})`))}` : '';
  return `In '${variant}' (${points} points), ${m.key} ${head}${tail}.`;
}

/** Sentences about a chain's last stage. */
export function stageSentences(s: StageLoss): string[] {
  const out: string[] = [];
  for (const m of [...new Set(s.rows.map((r) => r.metric))]) {
    const rows = s.rows.filter((r) => r.metric === m);
    const worse = rows.filter((r) => r.change.verdict === 'worse');
    const better = rows.filter((r) => r.change.verdict === 'better');
    const changes = rows.map((r) => r.change.value);
    const early = rows.map((r) => r.earlier.value);
    const seeds = [...new Set(rows.flatMap((r) => r.seeds))].filter((x) => x !== null);
    const span = (xs: number[]): string => (Math.min(...xs) === Math.max(...xs) ? fmtScore(m, xs[0]) : `${fmtScore(m, Math.min(...xs))} to ${fmtScore(m, Math.max(...xs))}`);
    const head = worse.length
      ? `'${s.variant}' loses ${m.key} in its last stage '${s.lastStage}': in ${worse.length} of ${rows.length} settings it scores below stage '${s.earlierStage}' alone ('${s.prefix}', same ${join([...s.shared, ...(seeds.length ? ['seed'] : [])])}) beyond noise`
      : `'${s.variant}''s last stage '${s.lastStage}' changes ${m.key} only within noise of stage '${s.earlierStage}' alone ('${s.prefix}') in ${rows.length - better.length} of ${rows.length} settings`;
    out.push(`${head}; the change runs from ${span(changes)} (stage '${s.earlierStage}' alone: ${span(early)}).`);
  }
  return out;
}

/** The sentence that goes with a diagnostics trend. */
export function diagnosticSentence(variant: string, t: DiagnosticTrend, withTracks = true): string {
  const levels = (vs: { level: string; value: number }[], pct: boolean): string => vs.map((v) => `${pct ? `${Math.round(v.value * 100)}%` : `${v.value.toFixed(2)}`} at ${v.level}`).join(', ');
  const parts = t.series.slice(0, 4).map((s) => `${s.what}${s.model ? ` (${s.model})` : ''}: ${levels(s.values, s.what.startsWith('sign'))}`);
  const held = t.heldAt ? ` with ${t.heldAt} held (${t.heldWhy})` : '';
  const first = parts.length ? `In '${variant}', along ${t.factor.name}${held}, the '${t.entry}' diagnostics move: ${parts.join('; ')}.` : '';
  const tr = withTracks ? t.tracks : undefined;
  const second = tr ? ` Over all ${tr.points} points, ${tr.metric.key} follows ${tr.what}${tr.model ? ` (${tr.model})` : ''} most closely (Spearman's rho ${tr.rho.toFixed(2)}${tr.interval ? ` [${tr.interval.lo.toFixed(2)}, ${tr.interval.hi.toFixed(2)}]` : ''}).` : '';
  return (first + second).trim();
}

/** Every variant's explanation: effects on each explained metric, stage loss, diagnostics and sentences. */
export function explainVariants(records: readonly ResultRecord[], metrics: readonly MetricInfo[], noise: Noise, opts: { expect: Readonly<Record<string, readonly string[]>>; skillOwner: (m: MetricInfo) => string | undefined; reference: (variant: string) => { record: ResultRecord; why: string } | undefined }): VariantExplanation[] {
  const merges = okMerges(records);
  const explained = explainedMetrics(metrics, merges);
  const out: VariantExplanation[] = [];
  for (const variant of [...new Set(merges.map((r) => r.variant))]) {
    const rs = merges.filter((r) => r.variant === variant);
    const factors = factorsOf(rs);
    const effects = factors.length ? explained.flatMap((m) => factorEffects(rs, factors, m, noise)) : [];
    const text: VariantExplanation['text'] = { effects: explained.map((m) => effectSentence(variant, rs.length, effects.filter((e) => e.metric === m))).filter((s): s is string => s !== undefined), stage: [], diagnostics: [] };
    const stage = stageLoss(variant, records, metrics, noise, opts.expect, opts.skillOwner);
    if (stage) text.stage.push(...stageSentences(stage));
    const diagnostics: DiagnosticTrend[] = [];
    const skill = explained[0];
    const ref = opts.reference(variant);
    if (skill && ref && factors.length) {
      const ranked = effects.filter((e) => e.metric === skill && e.factor.name !== 'seed').sort((a, b) => b.range - a.range);
      const moving = ranked.filter((e) => e.levels.some((l) => l.change?.verdict === 'worse'));
      for (const e of (moving.length ? moving : ranked).slice(0, 2)) {
        const t = diagnosticTrend(rs, e.factor, factors, ref.record, ref.why, skill, noise.opts.seed, noise.opts.level);
        if (!t) continue;
        diagnostics.push(t);
        text.diagnostics.push(diagnosticSentence(variant, t, diagnostics.length === 1));
      }
    }
    out.push({ variant, points: rs.length, effects, stage, diagnostics, text });
  }
  return out;
}
