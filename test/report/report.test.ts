import { afterAll, describe, expect, it } from 'vitest';
import { rm, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateReport, buildReportModel, resolveExperimentDir } from '../../src/report/generate.js';
import { distinctColors, heatmapChart, isChart, scoreVsFactorChart } from '../../src/report/charts.js';
import { factorsOf } from '../../src/report/factors.js';
import { compileChart, renderSvg } from '../../src/report/render.js';
import { syntheticResults } from './synthetic.js';
import { detectCollapses } from '../../src/report/collapse.js';
import { resolveOptions } from '../../src/report/options.js';
import { inlineScript, longTable, renderPage, scriptJson } from '../../src/report/html.js';
import { sampleComparisons } from '../../src/report/samples.js';
import type { ResultRecord } from '../../src/results/record.js';
import { rec, refs, scores } from './helpers.js';

const temps: string[] = [];
const track = (dir: string): string => (temps.push(dir), dir);
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

/** The least that still draws every kind of chart: SVG rendering is the slow part of these tests. */
const tiny = (): ResultRecord[] => syntheticResults({ densities: [0.1, 1], weights: [1, 0.5], seeds: [1], layers: 2, samplesPerSuite: 2, withFailure: true });
const small = (): ResultRecord[] => syntheticResults({ densities: [0.1, 0.5, 1], weights: [1, 0.5], seeds: [1, 2], layers: 2, samplesPerSuite: 3, withFailure: true });

/** Mark groups (vega's `role-mark`) that hold at least one drawn element. */
function drawnMarks(svg: string): number {
  return [...svg.matchAll(/<g class="mark-(\w+) role-mark[^"]*"[^>]*>(.{0,200})/g)].filter((m) => /^<(path|line|text|rect|g)/.test(m[2])).length;
}

async function expDir(records: ResultRecord[], extra?: Record<string, unknown>): Promise<string> {
  const dir = track(await mkdtemp(path.join(tmpdir(), 'mergelab-report-')));
  await writeFile(path.join(dir, 'results.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  if (extra) await writeFile(path.join(dir, 'experiment.json'), JSON.stringify(extra));
  return dir;
}

function chartPlan(records: ResultRecord[], select: string[] = [], maxDiagnosticPoints = 2) {
  const model = buildReportModel(records, resolveOptions(undefined, { select, maxDiagnosticPoints }), 'exp');
  return { charts: model.charts, skipped: model.skipped, model };
}

describe('charts', () => {
  it('renders every chart of a realistic result set to an SVG with marks, without vega-lite warnings', async () => {
    const records = tiny();
    const plan = chartPlan(records);
    expect(plan.charts[0].kind).toBe('skills');
    expect(new Set(plan.charts.map((c) => c.kind))).toEqual(new Set(['skills', 'score_vs_axis', 'heatmap', 'layer_diagnostics']));
    expect(new Set(plan.charts.map((c) => c.id)).size).toBe(plan.charts.length);
    const diag = plan.charts.find((c) => c.kind === 'layer_diagnostics')!;
    // a drop-down over the recommended point and the worst collapsed one, each also exported as its own SVG
    expect(diag.id).toBe('layer-diagnostics');
    expect(diag.svgVariants!.map((v) => v.id)).toHaveLength(2);
    for (const c of [...plan.charts, ...diag.svgVariants!.map((v) => ({ ...v, kind: 'variant' }))]) {
      const compiled = compileChart(c.vl);
      expect(compiled.warnings, c.id).toEqual([]);
      const { svg } = await renderSvg(compiled.vega);
      expect(svg.startsWith('<svg'), c.id).toBe(true);
      expect(drawnMarks(svg), c.id).toBeGreaterThan(0);
      expect(svg).toContain('<text'); // text is laid out without a canvas
    }
  });

  it('draws scores against a weight when nothing sweeps density, and no heatmap over a single factor', () => {
    const rs = [...refs(), ...[0.2, 0.6, 1].map((w, i) => rec({ point: `w${i}`, axes: { weight: w }, metrics: scores(0.3 + w / 3, 0.5, 11) }))];
    const { model } = chartPlan(rs);
    const board = model.board;
    const a = scoreVsFactorChart('v', rs, model.explained, board);
    expect(isChart(a) && a.id).toBe('score-vs-weight-v');
    expect(model.charts.some((c) => c.kind === 'heatmap')).toBe(false);
    expect(heatmapChart('v', rs, model.explained, board)).toEqual({ chart: 'v: heatmap', reason: 'no two crossed factors (every combination of their levels run)' });
  });

  it('draws heatmaps only over crossed factors, with text that reads on its cell', () => {
    const rs = [...refs(), ...[0.3, 0.7].flatMap((d) => [0.5, 1].map((w) => rec({ point: `d${d}w${w}`, axes: { density: d, weight: w }, metrics: scores(d * w, 0.5 + d / 4, 11) })))];
    const { model } = chartPlan(rs);
    const h = heatmapChart('v', rs, model.explained, model.board);
    if (!isChart(h)) throw new Error(h.reason);
    const spec = JSON.stringify(h.vl);
    // dark text on the bright (good) end of viridis, white on the dark end
    expect(spec).toContain('"condition":{"test":"datum.mean < ');
    // zipped with density: half the cells would be empty, so no heatmap
    const zipped = [...refs(), ...[0.3, 0.7].map((d) => rec({ point: `z${d}`, axes: { density: d, weight: d * 2 }, metrics: scores(d, 0.5, 11) }))];
    expect(isChart(heatmapChart('v', zipped, model.explained, chartPlan(zipped).model.board))).toBe(false);
  });

  it('leaves out of a chart every metric that does not vary', () => {
    const rs = [...refs(), ...[0.2, 0.6, 1].map((w, i) => rec({ point: `w${i}`, axes: { weight: w }, metrics: scores(0.3 + w / 3, 0.5, 11) }))];
    const { model } = chartPlan(rs);
    const a = scoreVsFactorChart('v', rs, model.explained, model.board);
    if (!isChart(a)) throw new Error(a.reason);
    // chat 0.5 and perplexity 11 everywhere: only math gets a panel
    expect((a.vl as unknown as { concat: { title: { text: string } }[] }).concat.map((p) => p.title.text)).toEqual(['math.exact_match_strict']);
  });

  it('skips rather than draws an empty chart when nothing varies or nothing was merged', () => {
    const one = [...refs(), rec({ point: 'only', axes: { method: 'ties' }, metrics: scores(0.5, 0.5, 11) })];
    const { model } = chartPlan(one);
    expect(model.charts.map((c) => c.kind)).toEqual(['skills']);
    expect(chartPlan(refs()).model.charts).toEqual([]);
    const noParents = [rec({ point: 'm', axes: { density: 0.5 }, metrics: scores(0.5, 0.5, 11) })];
    expect(chartPlan(noParents).skipped).toContainEqual({ chart: 'skill against skill', reason: 'no skill metric with a parent scoring above zero' });
  });

  it('charts the per-layer diagnostics of the recommended and selected points and names selections it cannot find', () => {
    const records = small();
    const good = records.find((r) => r.point === 'chained-d1-w1-l1-s1')!;
    const plan = chartPlan(records, [good.point, 'nope'], 3);
    const diag = plan.charts.find((c) => c.kind === 'layer_diagnostics')!;
    const labels = (diag.vl as { params: { bind: { labels: string[] } }[] }).params[0].bind.labels;
    const recommended = plan.model.recommendations[0].best.row.group.records[0].point;
    // chosen points first (the recommendation, then the selection), collapsed ones fill the rest
    expect(labels.slice(0, 2).map((l) => l.split(': ')[0])).toEqual([recommended, good.point].filter((p, i, a) => a.indexOf(p) === i));
    expect(labels).toHaveLength(3);
    expect(plan.skipped.some((x) => /more collapsed points have diagnostics/.test(x.reason))).toBe(true);
    expect(plan.skipped).toContainEqual({ chart: 'layer diagnostics of nope', reason: "selected point 'nope' is not in the results" });
  });

  it('gives every series of a chart its own colour, up to twenty', () => {
    expect(distinctColors(['a', 'b'])!.range).toEqual(['#4e79a7', '#f28e2b']);
    const twenty = distinctColors(Array.from({ length: 20 }, (_, i) => `s${i}`))!;
    expect(new Set(twenty.range).size).toBe(20);
    expect(distinctColors(Array.from({ length: 21 }, (_, i) => `s${i}`))).toBeUndefined();
  });
});

describe('page', () => {
  it('opens with the recommendation, then the findings, explanations, collapsed points, best per variant and samples', () => {
    const records = small();
    const model = buildReportModel(records, resolveOptions(undefined), 'exp');
    const html = renderPage(model, { vega: '/*v*/' });
    const at = (s: string): number => html.indexOf(s);
    expect(html.indexOf('<main>\n<section id="recommendation">')).toBeGreaterThan(0);
    expect(at('id="recommendation"')).toBeLessThan(at('id="headlines"'));
    expect(at('id="headlines"')).toBeLessThan(at('id="why"'));
    expect(at('id="why"')).toBeLessThan(at('id="collapsed"'));
    expect(at('id="collapsed"')).toBeLessThan(at('id="best"'));
    expect(at('id="best"')).toBeLessThan(at('id="samples"'));
    // the decision chart sits in the opening
    expect(at('id="chart-skills"')).toBeLessThan(at('id="headlines"'));
    expect(html).toContain('merged delta norm');
    expect(html).toMatch(/<pre class="recipe">name: stage1/);
    for (const c of model.charts) expect(html.split(`id="chart-${c.id}"`)).toHaveLength(2);
    // no external resource can be referenced by the markup itself
    expect(html).not.toMatch(/<(script|link|img|iframe)[^>]+(src|href)=/i);
    expect(html).toContain("default-src 'none'");
  });

  it('collapses a long table to its first rows, the rest a click away', () => {
    const rows = Array.from({ length: 30 }, (_, i) => `<tr><td>${i}</td></tr>`);
    const html = longTable('<tr><th>i</th></tr>', rows, { first: 8, what: 'points' });
    const [shown, hidden] = html.split('<details class="more">');
    expect(shown.match(/<tr><td>/g)).toHaveLength(8);
    expect(hidden).toMatch(/^<summary>Show the other 22 points<\/summary>/);
    expect(hidden.match(/<tr><td>/g)).toHaveLength(22);
    expect(longTable('<tr><th>i</th></tr>', rows.slice(0, 9))).not.toContain('<details');
  });

  it('shows a flagged point beside the base and parents on the same prompts', () => {
    const records = small();
    const [worst] = detectCollapses(records);
    const cmp = sampleComparisons(worst, records, 3);
    expect(cmp).toHaveLength(3);
    expect(new Set(cmp.map((c) => c.suite))).toEqual(new Set(['math', 'chat']));
    for (const c of cmp) {
      expect(c.point.name).toBe(worst.point);
      expect(c.references.map((r) => r.name)).toEqual(['base', 'chat', 'math']);
      const mine = records.find((r) => r.point === worst.point)!.samples.find((s) => s.id === c.id)!;
      expect(c.point.output).toBe(mine.output);
    }
  });

  it('escapes what would break out of a script element', () => {
    expect(scriptJson({ a: '</script><!--' })).not.toMatch(/<\/script|<!--/);
    expect(inlineScript('x="</script>"\n//# sourceMappingURL=x.map', 'lib')).toBe('x="<\\/script>"\n');
    expect(() => inlineScript('a<!--b', 'lib')).toThrow(/lib: contains '<!--'/);
  });
});

describe('generateReport', () => {
  it('writes index.html, results.csv/json and charts/*.svg atomically, honouring experiment.json', async () => {
    const dir = await expDir(tiny(), { name: 'small-exp', report: { collapse: { parent_fraction: 0.2 }, max_diagnostic_points: 2 } });
    const s = await generateReport(dir);
    expect(s.experiment).toBe('small-exp');
    expect((await readdir(dir)).sort()).toEqual(['charts', 'experiment.json', 'index.html', 'results.csv', 'results.json', 'results.jsonl', 'results.xxh64']);
    expect(s.charts.filter((c) => c.kind === 'layer_diagnostics')).toHaveLength(1);
    const written = (await readdir(path.join(dir, 'charts'))).sort();
    expect(written).toHaveLength(s.charts.length + 2);
    expect(written).toEqual(expect.arrayContaining([...s.charts.map((c) => `${c.id}.svg`), `layers-${s.flags[0].point}.svg`]));
    expect(s.files.charts.map((f) => path.basename(f)).sort()).toEqual(written);
    expect(s.flags.every((f) => f.violations.every((v) => v.rule !== 'below_parent_fraction' || v.value < 0.2 * v.reference!.value))).toBe(true);
    expect(s.counts).toMatchObject({ failed: 1, references: 3 });
    for (const f of s.files.charts) expect(drawnMarks(await readFile(f, 'utf8'))).toBeGreaterThan(0);
    const html = await readFile(s.files.html, 'utf8');
    expect(html).toContain('small-exp');
    // a second run gives the same bytes (no timestamps, stable order)
    const again = await generateReport(dir, { svg: false });
    expect(await readFile(again.files.html, 'utf8')).toBe(html);
  });

  it('reports an empty experiment without charts, and bad report options with file and field', async () => {
    const empty = await expDir([]);
    const s = await generateReport(empty, { svg: false });
    expect(s.charts).toEqual([]);
    expect(await readFile(s.files.html, 'utf8')).toContain('No successful merge points');
    const bad = await expDir(small().slice(0, 4), { report: { collapse: { parentFraction: 'half' } } });
    await expect(generateReport(bad)).rejects.toThrow(/experiment\.json: field 'report\.collapse\.parentFraction'/);
  });

  it('reads the declarations of records written before suites declared their metrics from the built-in YAML, and says so', async () => {
    const old = tiny().map(({ metricSpecs: _m, items: _i, ...r }) => r);
    const s = await generateReport(await expDir(old), { svg: false });
    expect(s.warnings).toContainEqual(expect.stringMatching(/^records carry no metric declarations for suites math, chat, lm \(written before suites declared them\): taken from .*evals\/math\.yaml/));
    expect(s.recommendations).toHaveLength(1);
    const foreign = tiny().map(({ metricSpecs: _m, items: _i, ...r }) => ({ ...r, metrics: Object.fromEntries(Object.entries(r.metrics).map(([k, v]) => [`x${k}`, v])) }));
    const f = await generateReport(await expDir(foreign), { svg: false });
    expect(f.warnings).toContainEqual(expect.stringMatching(/no eval YAML of that name declares them: their metrics are neither charted nor judged/));
    expect(f.flags).toEqual([]);
  });

  it('finds EXP as a folder, a name under reports/ or an experiment file', async () => {
    const root = track(await mkdtemp(path.join(tmpdir(), 'mergelab-root-')));
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(root, 'reports', 'seed-repro'), { recursive: true });
    expect(await resolveExperimentDir('seed-repro', root)).toBe(path.join(root, 'reports', 'seed-repro'));
    expect(await resolveExperimentDir('experiments/seed-repro.yaml', root)).toBe(path.join(root, 'reports', 'seed-repro'));
    expect(await resolveExperimentDir('reports/seed-repro', root)).toBe(path.join(root, 'reports', 'seed-repro'));
    await expect(resolveExperimentDir('other', root)).rejects.toThrow(/experiments with reports: seed-repro/);
  });
});

describe('zipped axes', () => {
  it('fold into one factor: series and tables name w_stage1/w_chat/normalize once, not three axes', () => {
    const records = small();
    const chained = records.filter((r) => r.variant === 'chained');
    expect(factorsOf(chained).map((f) => f.name)).toEqual(['density', 'rescale', 'w_stage1/w_chat/normalize', 'seed']);
    const { model } = chartPlan(records);
    const a = scoreVsFactorChart('chained', records, model.explained, model.board);
    if (!isChart(a)) throw new Error(a.reason);
    const series = new Set((a.vl as { data: { values: { series?: string }[] } }).data.values.map((v) => v.series).filter(Boolean));
    expect([...series].sort()).toEqual([
      'chained (rescale=inverse_density, w_stage1/w_chat/normalize=0.5/0.5/true)', 'chained (rescale=inverse_density, w_stage1/w_chat/normalize=1/1/false)',
      'chained (rescale=l1, w_stage1/w_chat/normalize=0.5/0.5/true)', 'chained (rescale=l1, w_stage1/w_chat/normalize=1/1/false)',
    ]);
  });
});

describe('determinism', () => {
  it('gives the same page and CSV whatever order the points were appended in', async () => {
    const records = small();
    const shuffled = [...records].reverse();
    const a = await expDir(records), b = await expDir(shuffled);
    const [sa, sb] = [await generateReport(a, { svg: false }), await generateReport(b, { svg: false })];
    expect(await readFile(sb.files.html, 'utf8')).toBe(await readFile(sa.files.html, 'utf8'));
    expect(await readFile(sb.files.csv, 'utf8')).toBe(await readFile(sa.files.csv, 'utf8'));
  });
});
