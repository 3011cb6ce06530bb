import type { TopLevelSpec } from 'vega-lite';
import type { ResultRecord } from '../results/record.js';
import { determinedBy, formatAxisValue, independentAxes, isNumericAxis, isWeightAxis, listMetrics, metricValue, okMerges, seedOf, settingLabel, varyingAxes, type MetricInfo } from './metrics.js';
import { groupBySetting, settingKey, spread, fractionOfBest } from './aggregate.js';
import { references, type CollapseFlag, type References } from './collapse.js';
import { layerTable, parseDiagnostics } from './diagnostics.js';
import type { CollapseThresholds } from './options.js';

/** One chart of the report: a Vega-Lite spec plus what the page says about it. */
export interface ChartSpec {
  /** File-name-safe id: charts/ID.svg and the page's container. */
  id: string;
  title: string;
  description: string;
  kind: 'score_vs_axis' | 'heatmap' | 'parent_fraction' | 'layer_diagnostics';
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

/*
 * Fonts: the page must not fetch any, and SVGs are rendered in Node without a canvas (vega then
 * estimates text widths), so name common system faces and fall back on the generic family.
 */
export const CHART_CONFIG = {
  font: 'Helvetica, Arial, "Liberation Sans", sans-serif',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 10, titleFontSize: 11, gridColor: '#eee' },
  legend: { labelFontSize: 10, titleFontSize: 11, labelLimit: 260 },
  header: { labelFontSize: 11, titleFontSize: 11 },
  title: { fontSize: 13, anchor: 'start' as const },
};

/*
 * vega-lite mislays independent scales when a facet is sorted by an explicit array (panels get
 * another panel's axis), so facet fields carry their order in a prefix that sorts naturally and the
 * header strips it.
 */
const ordered = (i: number, label: string): string => `${String(i).padStart(2, '0')}|${label}`;
const orderedHeader = { labelExpr: 'slice(datum.value, 3)' };
const sig = (v: number): number => Number(v.toPrecision(4));

export const safeId = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 120) || 'chart';

/** The axis a sweep varies most naturally along: density, else any other numeric swept axis. */
export function pickXAxis(merges: readonly ResultRecord[]): string | undefined {
  const vary = varyingAxes(merges).filter((a) => isNumericAxis(merges, a) && new Set(merges.map((r) => r.axes[a]).filter((v) => typeof v === 'number')).size > 1);
  return vary.find((a) => /density/i.test(a)) ?? vary.find(isWeightAxis) ?? vary[0];
}

const suitesOf = (metrics: MetricInfo[]): string[] => [...new Set(metrics.map((m) => m.suite))];

const refRows = (metrics: MetricInfo[], refs: References): Record<string, unknown>[] => {
  const rows: Record<string, unknown>[] = [];
  for (const m of metrics) {
    const b = refs.baseValue(m.key);
    if (b !== undefined) rows.push({ kind: 'r', metric: m.key, ref: `base (${refs.base[0]?.variant ?? 'base'})`, value: b });
    for (const p of refs.parents.keys()) {
      const v = refs.parentValue(p, m.key);
      if (v !== undefined) rows.push({ kind: 'r', metric: m.key, ref: `parent ${p}`, value: v });
    }
  }
  return rows;
};

/**
 * (a) Each metric of one suite against the swept axis (density when there is one): a line per
 * variant and setting of the other axes, a band for the min-max spread over seeds, and the base
 * and parents as dashed reference rules.
 */
export function scoreVsAxisChart(records: readonly ResultRecord[], suite: string): ChartResult {
  const name = `score vs axis (${suite})`;
  const merges = okMerges(records);
  if (!merges.length) return { chart: name, reason: 'no successful merge points' };
  const x = pickXAxis(merges);
  if (!x) return { chart: name, reason: 'no numeric sweep axis (density, weight, ...) varies between points' };
  const metrics = listMetrics(records).filter((m) => m.suite === suite);
  if (!metrics.length) return { chart: name, reason: `no metrics of suite ${suite}` };
  const onAxis = merges.filter((r) => typeof r.axes[x] === 'number');
  const others = independentAxes(onAxis, varyingAxes(onAxis).filter((a) => a !== x));
  const refs = references(records);
  const values: Record<string, unknown>[] = [];
  // Group by setting without x, so one line runs over x per variant and setting of the other axes.
  const lines = groupBySetting(onAxis.map((r) => ({ ...r, axes: Object.fromEntries(Object.entries(r.axes).filter(([k]) => k !== x)) })), others);
  const xOf = new Map(onAxis.map((r) => [r.point, r.axes[x] as number]));
  const panelOf = new Map(metrics.map((m, i) => [m.key, ordered(i, m.key)]));
  for (const line of lines) {
    const byX = new Map<number, ResultRecord[]>();
    for (const r of line.records) {
      const xv = xOf.get(r.point)!;
      if (!byX.has(xv)) byX.set(xv, []);
      byX.get(xv)!.push(r);
    }
    for (const [xv, rs] of byX) for (const m of metrics) {
      const s = spread(rs, m.key);
      if (s) values.push({ kind: 's', metric: m.key, panel: panelOf.get(m.key), series: line.label, x: xv, mean: s.mean, lo: s.min, hi: s.max, n: s.n });
    }
  }
  if (!values.length) return { chart: name, reason: `no ${suite} scores on points with a numeric ${x}` };
  values.push(...refRows(metrics, refs).map((r) => ({ ...r, panel: panelOf.get(r.metric as string) })));
  const logY = metrics.every((m) => m.isFluency) && values.every((v) => typeof v.lo !== 'number' || (v.lo as number) > 0);
  const yScale = logY ? { type: 'log' as const } : { zero: false };
  const without = [...new Set(merges.filter((r) => typeof r.axes[x] !== 'number').map((r) => r.variant))];
  const xEnc = { field: 'x', type: 'quantitative' as const, title: x, scale: { zero: false } };
  const vl: TopLevelSpec = {
    $schema: SCHEMA,
    title: `${suite}: scores against ${x}`,
    data: { values },
    facet: { field: 'panel', type: 'nominal', title: null, header: orderedHeader },
    columns: Math.min(3, metrics.length),
    spec: {
      width: 250,
      height: 170,
      layer: [
        {
          transform: [{ filter: "datum.kind === 's'" }],
          mark: { type: 'area', opacity: 0.18 },
          encoding: { x: xEnc, y: { field: 'lo', type: 'quantitative', title: 'value', scale: yScale }, y2: { field: 'hi' }, color: { field: 'series', type: 'nominal', title: 'variant / setting' } },
        },
        {
          transform: [{ filter: "datum.kind === 's'" }],
          mark: { type: 'line', point: true, strokeWidth: 1.5 },
          encoding: {
            x: xEnc,
            y: { field: 'mean', type: 'quantitative', title: 'value', scale: yScale },
            color: { field: 'series', type: 'nominal', title: 'variant / setting' },
            tooltip: [{ field: 'series', title: 'series' }, { field: 'x', title: x }, { field: 'mean', format: '.3f', title: 'mean' }, { field: 'lo', format: '.3f', title: 'min' }, { field: 'hi', format: '.3f', title: 'max' }, { field: 'n', title: 'seeds' }],
          },
        },
        {
          transform: [{ filter: "datum.kind === 'r'" }],
          mark: { type: 'rule', color: '#666', strokeWidth: 1 },
          encoding: { y: { field: 'value', type: 'quantitative', title: 'value', scale: yScale }, strokeDash: { field: 'ref', type: 'nominal', title: 'reference' }, tooltip: [{ field: 'ref' }, { field: 'value', format: '.3f' }] },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
    config: CHART_CONFIG,
  };
  return {
    id: safeId(`score-vs-${x}-${suite}`),
    title: `${suite} scores against ${x}`,
    description: `Mean over seeds (line) and min-max over seeds (band) per variant${others.length ? ` and setting of ${others.join(', ')}` : ''}; dashed rules are the base and parents.${without.length ? ` Not on this chart (no ${x}): ${without.join(', ')}.` : ''}${logY ? ' Log scale.' : ''}`,
    kind: 'score_vs_axis',
    vl,
  };
}

/**
 * (b) Heatmaps of each skill score (and perplexity) over weight by density, for every variant that
 * sweeps both; other swept axes become columns, seeds are averaged.
 */
export function heatmapCharts(records: readonly ResultRecord[]): ChartResult[] {
  const merges = okMerges(records);
  const out: ChartResult[] = [];
  const variants = [...new Set(merges.map((r) => r.variant))];
  const metrics = listMetrics(records).filter((m) => m.isSkill || m.isPerplexity);
  for (const v of variants) {
    const rs = merges.filter((r) => r.variant === v);
    const vary = varyingAxes(rs);
    const dAxis = vary.find((a) => /density/i.test(a));
    const wAxis = vary.find((a) => isWeightAxis(a) && a !== dAxis);
    if (!dAxis || !wAxis) continue;
    const cells = rs.filter((r) => r.axes[dAxis] !== undefined && r.axes[wAxis] !== undefined);
    const rest = vary.filter((a) => a !== dAxis && a !== wAxis);
    const rowAxes = independentAxes(cells, rest, [dAxis, wAxis]);
    // Axes zipped with the weight move with it: name them on the weight axis.
    const withW = rest.filter((a) => !rowAxes.includes(a) && determinedBy(cells, a, wAxis));
    const wTitle = withW.length ? `${wAxis} (+${withW.join(', ')})` : wAxis;
    const values: Record<string, unknown>[] = [];
    for (const g of groupBySetting(cells, rowAxes)) {
      const panel = rowAxes.map((a) => `${a}=${formatAxisValue(g.axes[a])}`).join(' ') || 'all';
      for (const m of metrics) {
        const s = spread(g.records, m.key);
        if (s) values.push({ metric: m.key, panel, density: formatAxisValue(g.axes[dAxis]), dnum: Number(g.axes[dAxis]), weight: formatAxisValue(g.axes[wAxis]), wnum: Number(g.axes[wAxis]), mean: s.mean, n: s.n });
      }
    }
    const present = metrics.filter((m) => values.some((x) => x.metric === m.key));
    if (!present.length) continue;
    const sortBy = (f: string): { field: string; order: 'ascending' } => ({ field: f, order: 'ascending' });
    const layer = (m: MetricInfo): TopLevelSpec['layer' & keyof TopLevelSpec] => [
      {
        mark: { type: 'rect' },
        encoding: {
          x: { field: 'density', type: 'ordinal', title: dAxis, sort: sortBy('dnum') },
          y: { field: 'weight', type: 'ordinal', title: wTitle, sort: sortBy('wnum') },
          color: { field: 'mean', type: 'quantitative', title: m.key, scale: { scheme: m.lowerIsBetter ? 'orangered' : 'viridis', ...(m.isPerplexity ? { type: 'log' } : {}) } },
          tooltip: [{ field: 'panel' }, { field: 'density', title: dAxis }, { field: 'weight', title: wAxis }, { field: 'mean', format: '.3f' }, { field: 'n', title: 'seeds' }],
        },
      },
      {
        mark: { type: 'text', fontSize: 9 },
        encoding: {
          x: { field: 'density', type: 'ordinal', sort: sortBy('dnum') },
          y: { field: 'weight', type: 'ordinal', sort: sortBy('wnum') },
          text: { field: 'mean', type: 'quantitative', format: m.isPerplexity ? '.3~s' : '.2f' },
          color: { value: '#fff' },
        },
      },
    ] as never;
    const panels = new Set(values.map((x) => x.panel)).size;
    const vl: TopLevelSpec = {
      $schema: SCHEMA,
      title: `${v}: scores over ${wAxis} by ${dAxis}`,
      data: { values },
      columns: 2,
      concat: present.map((m) =>
        rowAxes.length
          ? { title: m.key, transform: [{ filter: { field: 'metric', equal: m.key } }], facet: { column: { field: 'panel', type: 'nominal', title: null } }, spec: { width: { step: 34 }, height: { step: 22 }, layer: layer(m) } }
          : { title: m.key, transform: [{ filter: { field: 'metric', equal: m.key } }], width: { step: 34 }, height: { step: 22 }, layer: layer(m) },
      ) as never,
      resolve: { scale: { color: 'independent' } },
      config: CHART_CONFIG,
    };
    out.push({
      id: safeId(`heatmap-${v}`),
      title: `${v}: scores over ${wAxis} by ${dAxis}`,
      description: `Mean over seeds in each cell${rowAxes.length ? `; one panel per ${rowAxes.join(', ')} (${panels} panels)` : ''}. Each metric has its own colour scale.`,
      kind: 'heatmap',
      vl,
    });
  }
  if (!out.length) out.push({ chart: 'heatmaps', reason: 'no variant sweeps both a density and a weight axis' });
  return out;
}

/**
 * (c) Every merged point's skill scores as a fraction of the best parent on that skill, seeds as
 * dots over their setting, with the base, each parent and the collapse threshold as rules.
 */
export function parentFractionChart(records: readonly ResultRecord[], flags: readonly CollapseFlag[], th: CollapseThresholds): ChartResult {
  const name = 'fraction of best parent';
  const merges = okMerges(records);
  const refs = references(records);
  const skills = listMetrics(records).filter((m) => m.isSkill && (refs.bestParent(m)?.value ?? 0) > 0);
  if (!merges.length) return { chart: name, reason: 'no successful merge points' };
  if (!skills.length) return { chart: name, reason: refs.parents.size ? 'no parent scores above zero on any skill' : 'no parent results to compare with' };
  const flagged = new Set(flags.map((f) => f.point));
  const axes = varyingAxes(merges);
  const numeric = new Set(axes.filter((a) => isNumericAxis(merges, a)));
  // Settings in variant order, then by their axes (numbers numerically) so neighbours are comparable.
  const groups = groupBySetting(merges, axes).sort((a, b) => {
    if (a.variant !== b.variant) return a.variant.localeCompare(b.variant);
    for (const ax of axes) {
      const x = a.axes[ax], y = b.axes[ax];
      if (x === y) continue;
      if (numeric.has(ax) && typeof x === 'number' && typeof y === 'number') return x - y;
      return formatAxisValue(x).localeCompare(formatAxisValue(y));
    }
    return 0;
  });
  const values: Record<string, unknown>[] = [];
  const panelOf = new Map(skills.map((m, i) => [m.key, ordered(i, m.key)]));
  for (const g of groups) for (const r of g.records) for (const m of skills) {
    const v = metricValue(r, m.key);
    if (v === undefined) continue;
    values.push({ kind: 'p', metric: m.key, panel: panelOf.get(m.key), setting: g.label, variant: r.variant, seed: seedOf(r), point: r.point, value: v, fraction: fractionOfBest(v, m, refs), flagged: flagged.has(r.point) ? 'collapsed' : 'ok' });
  }
  for (const m of skills) {
    const best = refs.bestParent(m)!.value;
    for (const row of refRows([m], refs)) values.push({ ...row, panel: panelOf.get(m.key), fraction: (row.value as number) / best });
    values.push({ kind: 't', metric: m.key, panel: panelOf.get(m.key), ref: `collapse threshold (${th.parentFraction}x)`, fraction: th.parentFraction });
  }
  const many = groups.length > 40;
  const xEnc = { field: 'setting', type: 'nominal' as const, title: 'merge setting', sort: groups.map((g) => g.label), axis: many ? { labels: false, ticks: false } : { labelAngle: -50, labelLimit: 180 } };
  const vl: TopLevelSpec = {
    $schema: SCHEMA,
    title: 'Skill scores as a fraction of the best parent',
    data: { values },
    facet: { row: { field: 'panel', type: 'nominal', title: null, header: orderedHeader } },
    spec: {
      width: Math.max(320, Math.min(900, groups.length * 12)),
      height: 160,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'p'" }],
          mark: { type: 'point', filled: true, size: 36, opacity: 0.8 },
          encoding: {
            x: xEnc,
            y: { field: 'fraction', type: 'quantitative', title: 'fraction of best parent' },
            color: { field: 'variant', type: 'nominal', title: 'variant' },
            shape: { field: 'flagged', type: 'nominal', title: 'status', scale: { domain: ['ok', 'collapsed'], range: ['circle', 'cross'] } },
            tooltip: [{ field: 'point' }, { field: 'setting' }, { field: 'seed' }, { field: 'value', format: '.3f' }, { field: 'fraction', format: '.2f' }, { field: 'flagged', title: 'status' }],
          },
        },
        {
          transform: [{ filter: "datum.kind === 'r'" }],
          mark: { type: 'rule', color: '#666' },
          encoding: { y: { field: 'fraction', type: 'quantitative' }, strokeDash: { field: 'ref', type: 'nominal', title: 'reference' }, tooltip: [{ field: 'ref' }, { field: 'value', format: '.3f' }, { field: 'fraction', format: '.2f' }] },
        },
        {
          transform: [{ filter: "datum.kind === 't'" }],
          mark: { type: 'rule', color: '#d62728', strokeDash: [2, 2] },
          encoding: { y: { field: 'fraction', type: 'quantitative' }, tooltip: [{ field: 'ref' }] },
        },
      ],
    },
    config: CHART_CONFIG,
  };
  return {
    id: 'parent-fraction',
    title: 'Skill scores as a fraction of the best parent',
    description: `One dot per point (seeds of a setting share a column); crosses are collapsed points. Dashed grey rules: the base and each parent; red: the ${th.parentFraction}x collapse threshold.${many ? ` ${groups.length} settings: hover a dot for its name.` : ''}`,
    kind: 'parent_fraction',
    vl,
  };
}

const MEASURES = ['task-vector norm', 'merged delta / parent', 'retained of parent', 'sign conflict', 'kept fraction'];

/** Long-format per-layer rows of one point: (stage, layer, measure, series) -> value. */
function diagnosticRows(r: ResultRecord): Record<string, unknown>[] {
  const { stages } = parseDiagnostics(r.diagnostics);
  const values: Record<string, unknown>[] = [];
  const measure = (m: string): string => ordered(MEASURES.indexOf(m), m);
  stages.forEach((st, i) => {
    const same = (a: string, b: string): boolean => a.replace(/[^a-z0-9]/gi, '').toLowerCase() === b.replace(/[^a-z0-9]/gi, '').toLowerCase();
    const stage = ordered(i, `${i + 1}. ${st.stage}${st.method && !same(st.method, st.stage) ? ` (${st.method})` : ''}`);
    for (const row of layerTable(st)) {
      const base = { point: r.point, stage, layer: row.label, order: row.order };
      for (const [m, v] of Object.entries(row.taskVectorNorm)) values.push({ ...base, measure: measure('task-vector norm'), series: m, value: sig(v) });
      if (row.signConflict !== undefined) values.push({ ...base, measure: measure('sign conflict'), series: 'all models', value: sig(row.signConflict) });
      for (const [m, v] of Object.entries(row.mergedDeltaRelToParent)) values.push({ ...base, measure: measure('merged delta / parent'), series: m, value: sig(v) });
      for (const [m, v] of Object.entries(row.retained)) values.push({ ...base, measure: measure('retained of parent'), series: m, value: sig(v) });
      for (const [m, v] of Object.entries(row.keptFraction)) if (v < 0.999) values.push({ ...base, measure: measure('kept fraction'), series: m, value: sig(v) });
    }
  });
  return values;
}

function diagnosticsSpec(values: Record<string, unknown>[], title: string, choices?: { ids: string[]; labels: string[] }): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title,
    data: { values },
    // With several points a drop-down picks one: one chart to draw however many points collapsed.
    ...(choices
      ? {
          params: [{ name: 'pt', value: choices.ids[0], bind: { input: 'select', options: choices.ids, labels: choices.labels, name: 'point: ' } }],
          transform: [{ filter: 'datum.point === pt' }],
        }
      : {}),
    facet: { row: { field: 'measure', type: 'nominal', title: null, header: orderedHeader }, column: { field: 'stage', type: 'nominal', title: null, header: orderedHeader } },
    spec: {
      width: 260,
      height: 110,
      mark: { type: 'line', point: { size: 18 }, strokeWidth: 1.5 },
      encoding: {
        x: { field: 'layer', type: 'ordinal', title: 'layer', sort: { field: 'order', order: 'ascending' } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '.3~g' } },
        color: { field: 'series', type: 'nominal', title: 'model' },
        tooltip: [{ field: 'layer' }, { field: 'series', title: 'model' }, { field: 'value', format: '.4~g' }],
      },
    },
    resolve: { scale: { y: 'independent' } },
    config: CHART_CONFIG,
  } as TopLevelSpec;
}

const pointTitle = (r: ResultRecord): string => `${settingLabel(r)}${seedOf(r) !== null ? ` seed ${seedOf(r)}` : ''}`;

/**
 * (d) Per-layer diagnostics of one point, one column per merge stage (and one for the final model
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
 * (d) for many points: one chart with a drop-down of the points (worst first), plus a per-point
 * SVG of the first `svgPoints`. Points without diagnostics are left out.
 */
export function layerDiagnosticsExplorer(points: readonly { r: ResultRecord; why: string }[], svgPoints: number): ChartResult {
  const usable = points.map((p) => ({ ...p, rows: diagnosticRows(p.r) })).filter((p) => p.rows.length > 0);
  if (!usable.length) return { chart: 'layer diagnostics', reason: 'none of the collapsed or selected points has per-tensor diagnostics' };
  if (usable.length === 1) return layerDiagnosticsChart(usable[0].r, usable[0].why);
  const ids = usable.map((p) => p.r.point);
  const labels = usable.map((p) => `${p.r.point}: ${p.why}`);
  return {
    id: 'layer-diagnostics',
    title: `Per-layer diagnostics of ${usable.length} points`,
    description: `Pick a point (collapsed points worst first, then the selected ones). Rows: measures; columns: merge stages. 'merged delta / parent' above 1 means the merge moved that layer further from the base than the parent did; 'retained of parent' is the share of an original parent's task vector the final model keeps.`,
    kind: 'layer_diagnostics',
    vl: diagnosticsSpec(usable.flatMap((p) => p.rows), 'Per-layer diagnostics', { ids, labels }),
    svgVariants: usable.slice(0, svgPoints).map((p) => ({ id: safeId(`layers-${p.r.point}`), vl: diagnosticsSpec(p.rows, `${pointTitle(p.r)}: per-layer diagnostics`) })),
  };
}

/** Per-point diagnostics SVGs written at most (the page's drop-down holds them all). */
export const SVG_DIAGNOSTIC_POINTS = 6;

export interface ChartPlan {
  charts: ChartSpec[];
  skipped: SkippedChart[];
}

/** Every chart of the report, in page order. Pure: records and flags in, specs out. */
export function buildCharts(records: readonly ResultRecord[], flags: readonly CollapseFlag[], opts: { select: readonly string[]; maxDiagnosticPoints: number; collapse: CollapseThresholds }): ChartPlan {
  const results: ChartResult[] = [];
  for (const suite of suitesOf(listMetrics(records))) results.push(scoreVsAxisChart(records, suite));
  results.push(...heatmapCharts(records));
  results.push(parentFractionChart(records, flags, opts.collapse));
  const byPoint = new Map(records.map((r) => [r.point, r]));
  const skipped: SkippedChart[] = [];
  // Collapsed settings first (each by its worst seed), then further seeds, then selected points.
  const firstOfSetting: CollapseFlag[] = [], repeats: CollapseFlag[] = [];
  const seenSetting = new Set<string>();
  for (const f of flags) {
    const k = settingKey(byPoint.get(f.point)!);
    (seenSetting.has(k) ? repeats : firstOfSetting).push(f);
    seenSetting.add(k);
  }
  const wanted: { r: ResultRecord; why: string }[] = [...firstOfSetting, ...repeats].map((f) => ({
    r: byPoint.get(f.point)!,
    why: `collapsed (${f.violations.map((v) => v.rule).filter((x, i, a) => a.indexOf(x) === i).join(', ')})`,
  }));
  for (const p of opts.select) {
    const r = byPoint.get(p);
    if (!r) skipped.push({ chart: `layer diagnostics of ${p}`, reason: `selected point '${p}' is not in the results` });
    else if (!parseDiagnostics(r.diagnostics).stages.length) skipped.push({ chart: `layer diagnostics of ${p}`, reason: 'the record has no per-tensor diagnostics' });
    else if (!wanted.some((w) => w.r.point === p)) wanted.push({ r, why: 'selected' });
  }
  // Selected points always make the list; collapsed ones fill it up to the limit.
  const selected = wanted.filter((w) => w.why === 'selected');
  const collapsed = wanted.filter((w) => w.why !== 'selected' && parseDiagnostics(w.r.diagnostics).stages.length > 0);
  const room = Math.max(0, opts.maxDiagnosticPoints - selected.length);
  const shown = [...collapsed.slice(0, room), ...selected];
  if (shown.length) results.push(layerDiagnosticsExplorer(shown, SVG_DIAGNOSTIC_POINTS));
  else if (flags.length) skipped.push({ chart: 'layer diagnostics', reason: 'none of the collapsed points has per-tensor diagnostics' });
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
