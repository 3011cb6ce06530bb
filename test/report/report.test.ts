import { afterAll, describe, expect, it } from 'vitest';
import { rm, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateReport, buildReportModel, resolveExperimentDir } from '../../src/report/generate.js';
import { buildCharts, heatmapCharts, isChart, parentFractionChart, scoreVsAxisChart } from '../../src/report/charts.js';
import { compileChart, renderSvg } from '../../src/report/render.js';
import { syntheticResults } from '../../src/report/synthetic.js';
import { detectCollapses } from '../../src/report/collapse.js';
import { DEFAULT_THRESHOLDS, resolveOptions } from '../../src/report/options.js';
import { inlineScript, renderPage, scriptJson } from '../../src/report/html.js';
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

describe('charts', () => {
  it('renders every chart of a realistic result set to an SVG with marks, without vega-lite warnings', async () => {
    const records = tiny();
    const flags = detectCollapses(records);
    const plan = buildCharts(records, flags, { select: [], maxDiagnosticPoints: 2, collapse: DEFAULT_THRESHOLDS });
    expect(plan.charts.map((c) => c.kind)).toEqual(['score_vs_axis', 'score_vs_axis', 'score_vs_axis', 'heatmap', 'parent_fraction', 'layer_diagnostics']);
    const diag = plan.charts[5];
    // a drop-down over the two worst collapsed points, each also exported as its own SVG
    expect(diag.id).toBe('layer-diagnostics');
    expect(diag.svgVariants!.map((v) => v.id)).toEqual([`layers-${flags[0].point}`, expect.stringMatching(/^layers-/)]);
    for (const c of [...plan.charts, ...diag.svgVariants!.map((v) => ({ ...v, kind: 'variant' }))]) {
      const compiled = compileChart(c.vl);
      expect(compiled.warnings, c.id).toEqual([]);
      const { svg } = await renderSvg(compiled.vega);
      expect(svg.startsWith('<svg'), c.id).toBe(true);
      expect(drawnMarks(svg), c.id).toBeGreaterThan(0);
      expect(svg).toContain('<text'); // text is laid out without a canvas
    }
  });

  it('degrades without density: scores go against weight, heatmaps are skipped with a reason', () => {
    const rs = [...refs(), ...[0.2, 0.6, 1].flatMap((w, i) => [rec({ point: `w${i}`, axes: { weight: w }, metrics: scores(0.3 + w / 3, 0.5, 11) })])];
    const a = scoreVsAxisChart(rs, 'math');
    expect(isChart(a) && a.id).toBe('score-vs-weight-math');
    expect(heatmapCharts(rs)).toEqual([{ chart: 'heatmaps', reason: 'no variant sweeps both a density and a weight axis' }]);
  });

  it('skips rather than draws an empty chart when nothing varies or nothing was merged', () => {
    const one = [...refs(), rec({ point: 'only', axes: { method: 'ties' }, metrics: scores(0.5, 0.5, 11) })];
    expect(scoreVsAxisChart(one, 'math')).toMatchObject({ reason: expect.stringMatching(/no numeric sweep axis/) });
    expect(isChart(parentFractionChart(one, [], DEFAULT_THRESHOLDS))).toBe(true);
    expect(parentFractionChart(refs(), [], DEFAULT_THRESHOLDS)).toMatchObject({ reason: 'no successful merge points' });
    const noParents = [rec({ point: 'm', axes: { density: 0.5 }, metrics: scores(0.5, 0.5, 11) })];
    expect(parentFractionChart(noParents, [], DEFAULT_THRESHOLDS)).toMatchObject({ reason: 'no parent results to compare with' });
  });

  it('charts the per-layer diagnostics of selected points and names selections it cannot find', () => {
    const records = small();
    const good = records.find((r) => r.point === 'chained-d1-w1-l1-s1')!;
    const plan = buildCharts(records, [], { select: [good.point, 'nope'], maxDiagnosticPoints: 12, collapse: DEFAULT_THRESHOLDS });
    expect(plan.charts.filter((c) => c.kind === 'layer_diagnostics').map((c) => c.id)).toEqual(['layers-chained-d1-w1-l1-s1']);
    // selected points stay in the chart even when collapsed ones fill the limit
    const flags = detectCollapses(records);
    const both = buildCharts(records, flags, { select: [good.point], maxDiagnosticPoints: 3, collapse: DEFAULT_THRESHOLDS });
    const diag = both.charts.find((c) => c.kind === 'layer_diagnostics')!;
    const options = (diag.vl as { params: { bind: { options: string[] } }[] }).params[0].bind.options;
    expect(options).toEqual([flags[0].point, expect.any(String), good.point]);
    expect(both.skipped.some((x) => /more collapsed points have diagnostics/.test(x.reason))).toBe(true);
    expect(plan.skipped).toContainEqual({ chart: 'layer diagnostics of nope', reason: "selected point 'nope' is not in the results" });
  });
});

describe('page', () => {
  it('opens with the collapsed points, then the best-per-variant table, charts and samples', () => {
    const records = small();
    const model = buildReportModel(records, resolveOptions(undefined), 'exp');
    const html = renderPage(model, { vega: '/*v*/', vegaLite: '/*vl*/', vegaEmbed: '/*ve*/' });
    const at = (s: string): number => html.indexOf(s);
    expect(at('id="collapsed"')).toBeGreaterThan(0);
    expect(at('id="collapsed"')).toBeLessThan(at('id="best"'));
    expect(at('id="best"')).toBeLessThan(at('id="charts"'));
    expect(at('id="charts"')).toBeLessThan(at('id="samples"'));
    expect(html).toContain("merged delta norm");
    for (const c of model.charts) expect(html).toContain(`id="chart-${c.id}"`);
    // no external resource can be referenced by the markup itself
    expect(html).not.toMatch(/<(script|link|img|iframe)[^>]+(src|href)=/i);
    expect(html).toContain("default-src 'none'");
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
  it('fold into one setting: series and heatmap name w_stage1 once, not w_chat and normalize too', () => {
    const records = small();
    const a = scoreVsAxisChart(records, 'math');
    if (!isChart(a)) throw new Error(a.reason);
    const series = new Set((a.vl as { data: { values: { series?: string }[] } }).data.values.map((v) => v.series).filter(Boolean));
    expect([...series].filter((s) => s!.startsWith('chained')).sort()).toEqual([
      'chained rescale=inverse_density w_stage1=0.5', 'chained rescale=inverse_density w_stage1=1', 'chained rescale=l1 w_stage1=0.5', 'chained rescale=l1 w_stage1=1',
    ]);
    const [h] = heatmapCharts(records);
    expect(isChart(h) && h.title).toBe('chained: scores over w_stage1 by density');
    expect(JSON.stringify(isChart(h) && h.vl)).toContain('w_stage1 (+w_chat, normalize)');
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
