import type { TopLevelSpec } from 'vega-lite';
import type { ResultRecord } from '../results/record.js';
import { direction, okMerges, seedOf, settingLabel, type MetricInfo } from './metrics.js';
import { settingKey } from './aggregate.js';
import type { CollapseFlag, References } from './collapse.js';
import { layerTable, parseDiagnostics } from './diagnostics.js';
import { crossed, factorsOf, type Factor } from './factors.js';
import { d3Format, fmtPct } from './format.js';
import type { CollapseThresholds } from './options.js';
import { paretoFront, type Recommendation, type Scoreboard, type SettingRow } from './recommend.js';

/** One chart of the report: a Vega-Lite spec plus what the page says about it. */
export interface ChartSpec {
  /** File-name-safe id: charts/ID.svg and the page's container. */
  id: string;
  title: string;
  description: string;
  kind: 'skills' | 'score_vs_axis' | 'heatmap' | 'layer_diagnostics';
  /** The variant a per-variant chart is about. */
  variant?: string;
  vl: TopLevelSpec;
  /** Static versions exported as extra charts/ID.svg (an interactive chart's states, one per file). */
  svgVariants?: { id: string; vl: TopLevelSpec }[];
}

/** A chart that could not be drawn from these results, and why (shown on the page instead). */
export interface SkippedChart {
  chart: string;
  reason: string;
}

export type ChartResult = ChartSpec | SkippedChart;
export const isChart = (c: ChartResult): c is ChartSpec => 'vl' in c;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Every chart fits this width (legends below the plot), so the page needs no sideways scroll at 800 px. */
export const MAX_CHART_WIDTH = 700;

/*
 * Fonts: the page must not fetch any, and SVGs are rendered in Node without a canvas (vega then
 * estimates text widths), so name common system faces and fall back on the generic family.
 * Legend labels are never cut: a label cut to the width of its neighbour reads as the same series.
 */
export const CHART_CONFIG = {
  font: 'Helvetica, Arial, "Liberation Sans", sans-serif',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 10, titleFontSize: 11, gridColor: '#eee', labelColor: '#333', titleColor: '#222' },
  legend: { labelFontSize: 10, titleFontSize: 11, labelLimit: 0, titleLimit: 0, symbolOpacity: 1, orient: 'bottom' as const, direction: 'vertical' as const, columns: 1 },
  header: { labelFontSize: 11, titleFontSize: 11, labelLimit: 0 },
  title: { fontSize: 13, anchor: 'start' as const },
};

/** Ten well-separated hues for up to ten series, Kelly's twenty colours of maximum contrast beyond. */
const TABLEAU10 = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#7f7f7f'];
const KELLY20 = ['#0067a5', '#f38400', '#be0032', '#008856', '#875692', '#f3c300', '#a1caf1', '#848482', '#e68fac', '#c2b280', '#f99379', '#604e97', '#f6a600', '#b3446c', '#dcd300', '#882d17', '#8db600', '#654522', '#e25822', '#2b3d26'];

/** A colour scale giving each of `domain` its own colour; undefined when there are more series than distinct colours. */
export function distinctColors(domain: readonly string[]): { domain: string[]; range: string[] } | undefined {
  const pal = domain.length <= TABLEAU10.length ? TABLEAU10 : KELLY20;
  return domain.length <= pal.length ? { domain: [...domain], range: pal.slice(0, domain.length) } : undefined;
}

/*
 * vega-lite mislays independent scales when a facet is sorted by an explicit array (panels get
 * another panel's axis), so facet fields carry their order in a prefix that sorts naturally and the
 * header strips it.
 */
const ordered = (i: number, label: string): string => `${String(i).padStart(2, '0')}|${label}`;
const orderedHeader = { labelExpr: 'slice(datum.value, 3)' };
const sig = (v: number): number => Number(v.toPrecision(4));

export const safeId = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 120) || 'chart';

/** An axis title that says what the number is, its unit and which way is better (two lines, so it fits beside a short plot). */
export const axisTitle = (m: MetricInfo): string[] => [m.key, `${m.unit}, ${direction(m)}`];

const refRows = (metrics: readonly MetricInfo[], refs: References): Record<string, unknown>[] => {
  const rows: Record<string, unknown>[] = [];
  for (const m of metrics) {
    const b = refs.baseValue(m.key);
    if (b !== undefined) rows.push({ kind: 'r', metric: m.key, ref: 'base model', value: b });
    for (const p of refs.parents.keys()) {
      const v = refs.parentValue(p, m.key);
      if (v !== undefined) rows.push({ kind: 'r', metric: m.key, ref: `parent ${p}`, value: v });
    }
  }
  return rows;
};

/** Whether a metric takes more than one value over these records. */
function varies(records: readonly ResultRecord[], m: MetricInfo): boolean {
  const vs = new Set(records.map((r) => r.metrics[m.suite]?.[m.metric]).filter((v) => typeof v === 'number'));
  return vs.size > 1;
}

/**
 * The decision chart: every merge setting on two skills (means over seeds, with intervals), the
 * Pareto front, the parents and the base, the collapse limits, the recommendation and the
 * highlighted settings.
 */
export function skillsChart(board: Scoreboard, rec: Recommendation | undefined, th: CollapseThresholds): ChartResult {
  const name = 'skill against skill';
  const skills = board.owners.map((o) => o.metric);
  if (skills.length < 2) return { chart: name, reason: skills.length ? 'only one skill has a parent to compare with' : 'no skill metric with a parent scoring above zero' };
  const [x, y] = skills;
  const rows = board.rows.filter((r) => r.scores[x.key] && r.scores[y.key]);
  if (!rows.length) return { chart: name, reason: `no merge point has both ${x.key} and ${y.key}` };
  const variants = [...new Set(rows.map((r) => r.group.variant))];
  const colors = distinctColors(variants);
  if (!colors) return { chart: name, reason: `${variants.length} variants: more than the 20 distinguishable colours` };
  const front = new Set(paretoFront(rows, x, y));
  const marked = new Map<SettingRow, string>();
  if (rec) {
    marked.set(rec.best.row, 'recommended');
    for (const h of rec.highlights) marked.set(h.ranked.row, marked.has(h.ranked.row) ? `recommended; ${h.label}` : h.label);
  }
  const objective = new Map((rec?.ranked ?? []).map((r) => [r.row, r.objective.value]));
  const values: Record<string, unknown>[] = rows.map((r) => {
    const sx = r.scores[x.key], sy = r.scores[y.key];
    return {
      kind: 'p', variant: r.group.variant, setting: r.group.label, seeds: r.group.records.length, x: sx.value, y: sy.value,
      xlo: sx.interval?.lo ?? sx.value, xhi: sx.interval?.hi ?? sx.value, ylo: sy.interval?.lo ?? sy.value, yhi: sy.interval?.hi ?? sy.value,
      front: front.has(r) ? 'on the front' : 'dominated', kept: objective.has(r) ? fmtPct(objective.get(r)) : 'n/a', mark: marked.get(r) ?? null,
    };
  });
  const frontRows = [...front].map((r) => ({ kind: 'f', x: r.scores[x.key].value, y: r.scores[y.key].value }));
  const refs = [...(board.refs.base.length ? [{ name: 'base model', records: board.refs.base }] : []), ...[...board.refs.parents.entries()].map(([p, rs]) => ({ name: `parent ${p}`, records: rs }))];
  const refPts = refs.flatMap((ref) => {
    const vx = mean(ref.records.map((r) => r.metrics[x.suite]?.[x.metric])), vy = mean(ref.records.map((r) => r.metrics[y.suite]?.[y.metric]));
    return vx === undefined || vy === undefined ? [] : [{ kind: 'r', ref: ref.name, x: vx, y: vy }];
  });
  const limits = board.owners.slice(0, 2).map((o, i) => ({ kind: i === 0 ? 'lx' : 'ly', v: o.metric.higherIsBetter ? th.parentFraction * o.value : o.value / th.parentFraction, what: `${th.parentFraction}x parent ${o.parent}` }));
  const fx = d3Format(x), fy = d3Format(y);
  const xEnc = { field: 'x', type: 'quantitative' as const, title: axisTitle(x), axis: { format: fx }, scale: { zero: true, nice: true } };
  const yEnc = { field: 'y', type: 'quantitative' as const, title: axisTitle(y), axis: { format: fy }, scale: { zero: true, nice: true } };
  const vl: TopLevelSpec = {
    $schema: SCHEMA,
    title: `${y.key} against ${x.key}: every setting, the Pareto front and the references`,
    data: { values: [...values, ...frontRows, ...refPts, ...limits] },
    width: 560,
    height: 380,
    layer: [
      { transform: [{ filter: "datum.kind === 'lx'" }], mark: { type: 'rule', color: '#c62828', strokeDash: [3, 3], opacity: 0.7 }, encoding: { x: { field: 'v', type: 'quantitative' }, tooltip: [{ field: 'what', title: 'collapse limit' }] } },
      { transform: [{ filter: "datum.kind === 'ly'" }], mark: { type: 'rule', color: '#c62828', strokeDash: [3, 3], opacity: 0.7 }, encoding: { y: { field: 'v', type: 'quantitative' }, tooltip: [{ field: 'what', title: 'collapse limit' }] } },
      { transform: [{ filter: "datum.kind === 'f'" }], mark: { type: 'line', interpolate: 'step-after', color: '#555', strokeWidth: 1.2, strokeDash: [5, 3] }, encoding: { x: xEnc, y: yEnc, order: { field: 'x', type: 'quantitative' } } },
      { transform: [{ filter: "datum.kind === 'p'" }], mark: { type: 'rule', opacity: 0.35 }, encoding: { x: { field: 'xlo', type: 'quantitative' }, x2: { field: 'xhi' }, y: { field: 'y', type: 'quantitative' }, color: { field: 'variant', type: 'nominal', scale: colors } } },
      { transform: [{ filter: "datum.kind === 'p'" }], mark: { type: 'rule', opacity: 0.35 }, encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'ylo', type: 'quantitative' }, y2: { field: 'yhi' }, color: { field: 'variant', type: 'nominal', scale: colors } } },
      {
        transform: [{ filter: "datum.kind === 'p'" }],
        mark: { type: 'point', filled: true, size: 55, opacity: 0.9 },
        encoding: {
          x: xEnc, y: yEnc,
          color: { field: 'variant', type: 'nominal', title: 'variant', scale: colors },
          shape: { field: 'front', type: 'nominal', title: 'Pareto front', scale: { domain: ['on the front', 'dominated'], range: ['diamond', 'circle'] } },
          tooltip: [{ field: 'setting' }, { field: 'seeds' }, { field: 'x', title: x.key, format: fx }, { field: 'xlo', title: 'low', format: fx }, { field: 'xhi', title: 'high', format: fx }, { field: 'y', title: y.key, format: fy }, { field: 'ylo', title: 'low', format: fy }, { field: 'yhi', title: 'high', format: fy }, { field: 'kept', title: 'worst share kept' }],
        },
      },
      { transform: [{ filter: "datum.kind === 'p' && datum.mark !== null" }], mark: { type: 'point', size: 260, strokeWidth: 2, color: '#111', filled: false }, encoding: { x: xEnc, y: yEnc } },
      { transform: [{ filter: "datum.kind === 'p' && datum.mark !== null" }], mark: { type: 'text', align: 'left', dx: 10, dy: -10, fontSize: 11, fontWeight: 'bold', color: '#111' }, encoding: { x: xEnc, y: yEnc, text: { field: 'mark' } } },
      { transform: [{ filter: "datum.kind === 'r'" }], mark: { type: 'point', shape: 'square', size: 90, color: '#111', filled: true }, encoding: { x: xEnc, y: yEnc, tooltip: [{ field: 'ref', title: 'reference' }, { field: 'x', title: x.key, format: fx }, { field: 'y', title: y.key, format: fy }] } },
      { transform: [{ filter: "datum.kind === 'r'" }], mark: { type: 'text', align: 'left', dx: 8, dy: 4, fontSize: 11, color: '#111' }, encoding: { x: xEnc, y: yEnc, text: { field: 'ref' } } },
    ],
    config: CHART_CONFIG,
  } as TopLevelSpec;
  return {
    id: 'skills',
    title: `${y.key} against ${x.key}`,
    description: `One point per setting (mean over its seeds) with its intervals as bars; diamonds are on the Pareto front (dashed line): no other setting is at least as good on both and better on one. Black squares are the base and the parents; red dashed lines are the collapse limits (${th.parentFraction}x each parent).${rec ? ' The ringed points are the recommendation and the highlighted settings.' : ''}`,
    kind: 'skills',
    vl,
  };
}

const mean = (xs: readonly (number | undefined)[]): number | undefined => {
  const vs = xs.filter((v): v is number => typeof v === 'number');
  return vs.length ? vs.reduce((a, b) => a + b, 0) / vs.length : undefined;
};

/** The factor a variant's scores are drawn against: its numeric factor with the most levels, density on a tie. */
export function xFactor(factors: readonly Factor[]): Factor | undefined {
  const numeric = factors.filter((f) => f.numeric && f.levels.length > 1);
  const density = (f: Factor): number => (/density/i.test(f.name) ? 1 : 0);
  return [...numeric].sort((a, b) => b.levels.length - a.levels.length || density(b) - density(a))[0];
}

/**
 * A variant's scores against its main numeric factor: one panel per explained metric that varies,
 * one line per level of the other factors (mean over seeds) with its interval as a band, and the
 * base and parents as dashed rules.
 */
export function scoreVsFactorChart(variant: string, records: readonly ResultRecord[], metrics: readonly MetricInfo[], board: Scoreboard): ChartResult {
  const name = `${variant}: scores against a factor`;
  const rs = okMerges(records).filter((r) => r.variant === variant);
  const factors = factorsOf(rs);
  const x = xFactor(factors);
  if (!x) return { chart: name, reason: 'no numeric factor with two or more levels' };
  const shown = metrics.filter((m) => varies(rs, m));
  if (!shown.length) return { chart: name, reason: 'no explained metric varies' };
  const others = factors.filter((f) => f !== x && f.name !== 'seed');
  // Levels in parentheses: a label never runs on into another (density=0.1 against density=0.15).
  const seriesOf = (r: ResultRecord): string => (others.length ? `${variant} (${others.map((f) => `${f.name}=${f.levelOf(r)}`).join(', ')})` : variant);
  const series = [...new Set(rs.map(seriesOf))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const colors = distinctColors(series);
  if (!colors) return { chart: name, reason: `${series.length} series: more than the 20 distinguishable colours` };
  const rows = board.rows.filter((r) => r.group.variant === variant);
  const values: Record<string, unknown>[] = [];
  for (const row of rows) {
    const r0 = row.group.records[0];
    for (const m of shown) {
      const s = row.scores[m.key];
      if (!s) continue;
      values.push({ kind: 's', metric: m.key, series: seriesOf(r0), x: Number(x.levelOf(r0)), mean: s.value, lo: s.interval?.lo ?? s.value, hi: s.interval?.hi ?? s.value, seeds: row.group.records.length });
    }
  }
  values.push(...refRows(shown, board.refs));
  const refNames = [...new Set(values.filter((v) => v.kind === 'r').map((v) => v.ref as string))];
  const xValues = x.levels.map(Number);
  const xAxis = { values: xValues, labelFlush: false, labelOverlap: 'greedy' as const };
  const panel = (m: MetricInfo): Record<string, unknown> => {
    const fmt = d3Format(m);
    const y = { type: 'quantitative' as const, title: axisTitle(m), scale: { zero: false }, axis: { format: fmt } };
    return {
      title: { text: m.key, fontSize: 12 },
      width: 300,
      height: 190,
      transform: [{ filter: { field: 'metric', equal: m.key } }],
      layer: [
        { transform: [{ filter: "datum.kind === 's'" }], mark: { type: 'area', opacity: 0.15 }, encoding: { x: { field: 'x', type: 'quantitative', title: x.name, scale: { zero: false }, axis: xAxis }, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color: { field: 'series', type: 'nominal', title: 'series', scale: colors } } },
        {
          transform: [{ filter: "datum.kind === 's'" }],
          mark: { type: 'line', point: true, strokeWidth: 1.6 },
          encoding: {
            x: { field: 'x', type: 'quantitative', title: x.name, scale: { zero: false }, axis: xAxis },
            y: { ...y, field: 'mean' },
            color: { field: 'series', type: 'nominal', title: 'series', scale: colors },
            tooltip: [{ field: 'series' }, { field: 'x', title: x.name }, { field: 'mean', title: m.key, format: fmt }, { field: 'lo', title: 'low', format: fmt }, { field: 'hi', title: 'high', format: fmt }, { field: 'seeds' }],
          },
        },
        ...(refNames.length ? [{ transform: [{ filter: "datum.kind === 'r'" }], mark: { type: 'rule', color: '#555', strokeWidth: 1 }, encoding: { y: { ...y, field: 'value' }, strokeDash: { field: 'ref', type: 'nominal', title: 'reference', scale: { domain: refNames, range: refNames.map((_, i) => [[6, 3], [2, 2], [8, 2, 2, 2], [1, 3], [4, 4]][i % 5]) } }, tooltip: [{ field: 'ref' }, { field: 'value', format: fmt }] } }] : []),
      ],
    };
  };
  const vl = {
    $schema: SCHEMA,
    title: `${variant}: scores against ${x.name}`,
    data: { values },
    columns: 2,
    concat: shown.map(panel),
    resolve: { scale: { y: 'independent' } },
    config: CHART_CONFIG,
  } as unknown as TopLevelSpec;
  return {
    id: safeId(`score-vs-${x.name}-${variant}`),
    title: `${variant}: scores against ${x.name}`,
    description: `One line per ${others.length ? others.map((f) => f.name).join(' x ') : 'variant'} (mean over seeds), its band the interval of that mean (items${rs.some((r) => seedOf(r) !== null) ? ' and seeds' : ''}); dashed rules are the base and the parents. Metrics that do not vary in '${variant}' are left out.`,
    kind: 'score_vs_axis',
    variant,
    vl,
  };
}

/**
 * A heatmap per explained metric over two crossed factors of one variant (the one with more
 * levels across), other crossed factors as panels, seeds averaged. Variants without two crossed
 * factors get none: a heatmap over zipped axes is half empty.
 */
export function heatmapChart(variant: string, records: readonly ResultRecord[], metrics: readonly MetricInfo[], board: Scoreboard): ChartResult {
  const name = `${variant}: heatmap`;
  const rs = okMerges(records).filter((r) => r.variant === variant);
  const factors = factorsOf(rs).filter((f) => f.name !== 'seed');
  const pairs: [Factor, Factor][] = [];
  for (let i = 0; i < factors.length; i++) for (let j = i + 1; j < factors.length; j++) if (crossed(rs, factors[i], factors[j])) pairs.push([factors[i], factors[j]]);
  if (!pairs.length) return { chart: name, reason: 'no two crossed factors (every combination of their levels run)' };
  const [a, b] = pairs.sort(([p, q], [r, s]) => r.levels.length * s.levels.length - p.levels.length * q.levels.length)[0];
  const [xF, yF] = a.levels.length >= b.levels.length ? [a, b] : [b, a];
  const rest = factors.filter((f) => f !== xF && f !== yF && crossed(rs, f, xF) && crossed(rs, f, yF));
  const uncrossed = factors.filter((f) => f !== xF && f !== yF && !rest.includes(f));
  if (uncrossed.length) return { chart: name, reason: `${uncrossed.map((f) => f.name).join(', ')} not crossed with ${xF.name} and ${yF.name}` };
  const shown = metrics.filter((m) => varies(rs, m));
  if (!shown.length) return { chart: name, reason: 'no explained metric varies' };
  const rows = board.rows.filter((r) => r.group.variant === variant);
  const values: Record<string, unknown>[] = [];
  for (const row of rows) {
    const r0 = row.group.records[0];
    const panel = rest.map((f) => `${f.name}=${f.levelOf(r0)}`).join(', ') || variant;
    for (const m of shown) {
      const s = row.scores[m.key];
      if (s) values.push({ metric: m.key, panel, x: xF.levelOf(r0), xi: xF.levels.indexOf(xF.levelOf(r0)), y: yF.levelOf(r0), yi: yF.levels.indexOf(yF.levelOf(r0)), mean: s.value, lo: s.interval?.lo, hi: s.interval?.hi, seeds: row.group.records.length });
    }
  }
  const panels = [...new Set(values.map((v) => v.panel as string))];
  const cell = Math.max(28, Math.min(46, Math.floor((MAX_CHART_WIDTH - 120) / (xF.levels.length * Math.min(2, panels.length)))));
  const block = (m: MetricInfo): Record<string, unknown> => {
    const vs = values.filter((v) => v.metric === m.key).map((v) => v.mean as number);
    const lo = Math.min(...vs), hi = Math.max(...vs);
    // viridis is dark at its low end: bright text there, dark text on the bright end (better is brighter).
    const darkAtHigh = !m.higherIsBetter;
    const mid = (lo + hi) / 2;
    const fmt = d3Format(m);
    const layer = [
      {
        mark: { type: 'rect' },
        encoding: {
          x: { field: 'x', type: 'ordinal', title: xF.name, sort: { field: 'xi', order: 'ascending' }, axis: { labelAngle: 0 } },
          y: { field: 'y', type: 'ordinal', title: yF.name, sort: { field: 'yi', order: 'ascending' } },
          color: { field: 'mean', type: 'quantitative', title: [m.metric, direction(m)], scale: { scheme: 'viridis', reverse: !m.higherIsBetter, domain: [lo, hi] }, legend: { orient: 'right', direction: 'vertical', format: fmt, gradientLength: 120 } },
          tooltip: [{ field: 'panel' }, { field: 'x', title: xF.name }, { field: 'y', title: yF.name }, { field: 'mean', title: m.key, format: fmt }, { field: 'lo', title: 'low', format: fmt }, { field: 'hi', title: 'high', format: fmt }, { field: 'seeds' }],
        },
      },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          x: { field: 'x', type: 'ordinal', sort: { field: 'xi', order: 'ascending' } },
          y: { field: 'y', type: 'ordinal', sort: { field: 'yi', order: 'ascending' } },
          text: { field: 'mean', type: 'quantitative', format: fmt },
          color: { condition: { test: darkAtHigh ? `datum.mean > ${mid}` : `datum.mean < ${mid}`, value: '#ffffff' }, value: '#111111' },
        },
      },
    ];
    const inner = { width: { step: cell }, height: { step: 24 }, layer };
    return panels.length > 1
      ? { title: { text: m.key, fontSize: 12 }, transform: [{ filter: { field: 'metric', equal: m.key } }], facet: { field: 'panel', type: 'nominal', title: null, header: { labelLimit: 0 } }, columns: 2, spec: inner }
      : { title: { text: m.key, fontSize: 12 }, transform: [{ filter: { field: 'metric', equal: m.key } }], ...inner };
  };
  const vl = {
    $schema: SCHEMA,
    title: `${variant}: ${shown.map((m) => m.key).join(', ')} over ${yF.name} by ${xF.name}`,
    data: { values },
    vconcat: shown.map(block),
    resolve: { scale: { color: 'independent' } },
    config: CHART_CONFIG,
  } as unknown as TopLevelSpec;
  return {
    id: safeId(`heatmap-${variant}`),
    title: `${variant}: scores over ${yF.name} by ${xF.name}`,
    description: `Mean over seeds in each cell; ${rest.length ? `one panel per ${rest.map((f) => f.name).join(', ')}; ` : ''}each metric has its own colour scale, brighter is better. Hover a cell for its interval.`,
    kind: 'heatmap',
    variant,
    vl,
  };
}

const MEASURES = ['task-vector norm', 'merged delta / parent', 'retained of parent', 'sign conflict', 'kept fraction'];
const MEASURE_UNITS: Record<string, string> = { 'task-vector norm': 'L2 norm', 'merged delta / parent': 'ratio of norms', 'retained of parent': 'projection share', 'sign conflict': 'share of elements', 'kept fraction': 'share of elements' };

/**
 * Long-format per-layer rows of one point: (stage, layer, measure, series) -> value. Keys are
 * short and the point is a number (its place in the drop-down): the rows of forty points are
 * most of the page's bytes.
 */
function diagnosticRows(r: ResultRecord, index = 0): Record<string, unknown>[] {
  const { stages } = parseDiagnostics(r.diagnostics);
  const values: Record<string, unknown>[] = [];
  // A model named like a stage is that stage's output; saying so also keeps 'math' from reading as the start of 'math_dare'.
  const outputs = new Set(stages.map((st) => st.stage));
  const model = (name: string): string => `${name} (${outputs.has(name) ? 'stage output' : 'model'})`;
  const measure = (m: string): string => ordered(MEASURES.indexOf(m), `${m} (${MEASURE_UNITS[m]})`);
  stages.forEach((st, i) => {
    const same = (a: string, b: string): boolean => a.replace(/[^a-z0-9]/gi, '').toLowerCase() === b.replace(/[^a-z0-9]/gi, '').toLowerCase();
    const stage = ordered(i, `${i + 1}. ${st.stage}${st.method && !same(st.method, st.stage) ? ` (${st.method})` : ''}`);
    for (const row of layerTable(st)) {
      const base = { p: index, st: stage, ly: row.label, o: row.order };
      for (const [m, v] of Object.entries(row.taskVectorNorm)) values.push({ ...base, ms: measure('task-vector norm'), se: model(m), v: sig(v) });
      if (row.signConflict !== undefined) values.push({ ...base, ms: measure('sign conflict'), se: 'all models', v: sig(row.signConflict) });
      for (const [m, v] of Object.entries(row.mergedDeltaRelToParent)) values.push({ ...base, ms: measure('merged delta / parent'), se: model(m), v: sig(v) });
      for (const [m, v] of Object.entries(row.retained)) values.push({ ...base, ms: measure('retained of parent'), se: model(m), v: sig(v) });
      for (const [m, v] of Object.entries(row.keptFraction)) if (v < 0.999) values.push({ ...base, ms: measure('kept fraction'), se: model(m), v: sig(v) });
    }
  });
  return values;
}

function diagnosticsSpec(values: Record<string, unknown>[], title: string, choices?: { labels: string[] }): TopLevelSpec {
  const stages = new Set(values.map((v) => v.st)).size;
  const series = [...new Set(values.map((v) => v.se as string))].sort();
  return {
    $schema: SCHEMA,
    title,
    data: { values },
    // With several points a drop-down picks one: one chart to draw however many points collapsed.
    ...(choices
      ? {
          params: [{ name: 'pt', value: 0, bind: { input: 'select', options: choices.labels.map((_, i) => i), labels: choices.labels, name: 'point: ' } }],
          transform: [{ filter: 'datum.p === pt' }],
        }
      : {}),
    facet: { row: { field: 'ms', type: 'nominal', title: null, header: { ...orderedHeader, labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelOrient: 'top' } }, column: { field: 'st', type: 'nominal', title: null, header: orderedHeader } },
    spec: {
      width: Math.floor((MAX_CHART_WIDTH - 60) / Math.max(1, stages)) - 40,
      height: 100,
      mark: { type: 'line', point: { size: 18 }, strokeWidth: 1.5 },
      encoding: {
        x: { field: 'ly', type: 'ordinal', title: 'layer', sort: { field: 'o', order: 'ascending' }, axis: { labelAngle: 0 } },
        y: { field: 'v', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '.3~g' } },
        color: { field: 'se', type: 'nominal', title: 'model', scale: distinctColors(series) },
        tooltip: [{ field: 'ly', title: 'layer' }, { field: 'se', title: 'model' }, { field: 'v', title: 'value', format: '.4~g' }],
      },
    },
    resolve: { scale: { y: 'independent' } },
    config: CHART_CONFIG,
  } as TopLevelSpec;
}

const pointTitle = (r: ResultRecord): string => `${settingLabel(r)}${seedOf(r) !== null ? ` seed ${seedOf(r)}` : ''}`;

/**
 * Per-layer diagnostics of one point, one column per merge stage (and one for the final model
 * against the original parents when the sweep recorded it): each task vector's norm, the merged
 * delta's norm relative to each parent's, the share of each parent retained, the share of
 * conflicting signs, and the fraction kept by sparsification.
 */
export function layerDiagnosticsChart(r: ResultRecord, why: string): ChartResult {
  const values = diagnosticRows(r);
  if (!values.length) return { chart: `layer diagnostics of ${r.point}`, reason: 'the record has no per-tensor diagnostics' };
  return {
    id: safeId(`layers-${r.point}`),
    title: `Per-layer diagnostics: ${pointTitle(r)}`,
    description: `${why}. Rows: measures; columns: merge stages. 'merged delta / parent' above 1 means the merge moved that layer further from the base than the parent did.`,
    kind: 'layer_diagnostics',
    vl: diagnosticsSpec(values, `${r.point}: per-layer diagnostics`),
  };
}

/**
 * Per-layer diagnostics for many points: one chart with a drop-down of the points (worst first),
 * plus a per-point SVG of the first `svgPoints`. Points without diagnostics are left out.
 */
export function layerDiagnosticsExplorer(points: readonly { r: ResultRecord; why: string }[], svgPoints: number): ChartResult {
  const usable = points.filter((p) => diagnosticRows(p.r).length > 0).map((p, i) => ({ ...p, rows: diagnosticRows(p.r, i) }));
  if (!usable.length) return { chart: 'layer diagnostics', reason: 'none of the collapsed or selected points has per-tensor diagnostics' };
  if (usable.length === 1) return layerDiagnosticsChart(usable[0].r, usable[0].why);
  const labels = usable.map((p) => `${p.r.point}: ${p.why}`);
  return {
    id: 'layer-diagnostics',
    title: `Per-layer diagnostics of ${usable.length} points`,
    description: `Pick a point (collapsed points worst first, then the recommended, highlighted and selected ones). Rows: measures; columns: merge stages. 'merged delta / parent' above 1 means the merge moved that layer further from the base than the parent did; 'retained of parent' is the share of an original parent's task vector the final model keeps.`,
    kind: 'layer_diagnostics',
    vl: diagnosticsSpec(usable.flatMap((p) => p.rows), 'Per-layer diagnostics', { labels }),
    svgVariants: usable.slice(0, svgPoints).map((p) => ({ id: safeId(`layers-${p.r.point}`), vl: diagnosticsSpec(p.rows, `${pointTitle(p.r)}: per-layer diagnostics`) })),
  };
}

/** Per-point diagnostics SVGs written at most (the page's drop-down holds them all). */
export const SVG_DIAGNOSTIC_POINTS = 6;

export interface ChartPlan {
  charts: ChartSpec[];
  skipped: SkippedChart[];
}

export interface ChartInputs {
  records: readonly ResultRecord[];
  flags: readonly CollapseFlag[];
  board: Scoreboard;
  /** The first goal's recommendation: marked on the skills chart. */
  rec: Recommendation | undefined;
  /** Metrics drawn per variant (headline skills and varying headline quality metrics). */
  explained: readonly MetricInfo[];
  /** Points whose diagnostics are charted beside the collapsed ones (recommended, highlighted, selected). */
  select: readonly { point: string; why: string }[];
  maxDiagnosticPoints: number;
  collapse: CollapseThresholds;
}

/** Every chart of the report, in page order. Pure: records and analyses in, specs out. */
export function buildCharts(o: ChartInputs): ChartPlan {
  const results: ChartResult[] = [skillsChart(o.board, o.rec, o.collapse)];
  const variants = [...new Set(okMerges(o.records).map((r) => r.variant))];
  const factorCount = (v: string): number => factorsOf(okMerges(o.records).filter((r) => r.variant === v)).filter((f) => f.name !== 'seed').length;
  // A variant with one setting has nothing to draw against; one with a single factor has no heatmap.
  for (const v of variants) if (factorCount(v) >= 1) results.push(scoreVsFactorChart(v, o.records, o.explained, o.board));
  for (const v of variants) if (factorCount(v) >= 2) results.push(heatmapChart(v, o.records, o.explained, o.board));
  const byPoint = new Map(o.records.map((r) => [r.point, r]));
  const skipped: SkippedChart[] = [];
  // Collapsed settings first (each by its worst seed), then further seeds, then chosen points.
  const firstOfSetting: CollapseFlag[] = [], repeats: CollapseFlag[] = [];
  const seenSetting = new Set<string>();
  for (const f of o.flags.filter((x) => x.collapsed)) {
    const k = settingKey(byPoint.get(f.point)!);
    (seenSetting.has(k) ? repeats : firstOfSetting).push(f);
    seenSetting.add(k);
  }
  const wanted: { r: ResultRecord; why: string }[] = [...firstOfSetting, ...repeats].map((f) => ({
    r: byPoint.get(f.point)!,
    why: `collapsed (${f.violations.map((v) => v.rule).filter((x, i, a) => a.indexOf(x) === i).join(', ')})`,
  }));
  const chosen: { r: ResultRecord; why: string }[] = [];
  for (const p of o.select) {
    const r = byPoint.get(p.point);
    if (!r) skipped.push({ chart: `layer diagnostics of ${p.point}`, reason: `selected point '${p.point}' is not in the results` });
    else if (!parseDiagnostics(r.diagnostics).stages.length) skipped.push({ chart: `layer diagnostics of ${p.point}`, reason: 'the record has no per-tensor diagnostics' });
    else if (!wanted.some((w) => w.r.point === p.point) && !chosen.some((w) => w.r.point === p.point)) chosen.push({ r, why: p.why });
  }
  // Chosen points always make the list; collapsed ones fill it up to the limit.
  const collapsed = wanted.filter((w) => parseDiagnostics(w.r.diagnostics).stages.length > 0);
  const room = Math.max(0, o.maxDiagnosticPoints - chosen.length);
  const shown = [...chosen, ...collapsed.slice(0, room)];
  if (shown.length) results.push(layerDiagnosticsExplorer(shown, SVG_DIAGNOSTIC_POINTS));
  else if (o.flags.length) skipped.push({ chart: 'layer diagnostics', reason: 'none of the collapsed points has per-tensor diagnostics' });
  if (collapsed.length > room) skipped.push({ chart: 'layer diagnostics', reason: `${collapsed.length - room} more collapsed points have diagnostics; the ${room} worst are charted (report option maxDiagnosticPoints)` });
  const charts = results.filter(isChart);
  // Ids must be unique: they name files and page containers.
  const seen = new Map<string, number>();
  for (const c of charts) {
    const n = seen.get(c.id) ?? 0;
    seen.set(c.id, n + 1);
    if (n) c.id = `${c.id}-${n + 1}`;
  }
  return { charts, skipped: [...results.filter((c): c is SkippedChart => !isChart(c)), ...skipped] };
}

