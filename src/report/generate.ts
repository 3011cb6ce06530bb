import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ResultRecord } from '../results/record.js';
import { readResultsJsonl, sortRecords, writeExports } from '../results/export.js';
import { buildDirAtomic, writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import { bestPerVariant, settingKey } from './aggregate.js';
import { buildCharts, type ChartSpec, type SkippedChart } from './charts.js';
import { detectCollapses, references, type CollapseFlag } from './collapse.js';
import { headlines } from './headlines.js';
import { renderPage, type FlagGroup, type PageModel } from './html.js';
import { loadVegaAssets } from './assets.js';
import { listMetrics } from './metrics.js';
import { camelizeKeys, ReportConfigSchema, resolveOptions, type ReportConfig, type ReportOptions, type ResolvedOptions } from './options.js';
import { compileChart, renderSvg } from './render.js';
import { sampleComparisons } from './samples.js';
import type { BestRow } from './aggregate.js';

export type { ReportOptions } from './options.js';

export interface ReportSummary {
  experiment: string;
  expDir: string;
  outDir: string;
  files: { html: string; csv: string; json: string; charts: string[] };
  counts: PageModel['counts'];
  /** Collapsed points, worst first, with rule, numbers and standout diagnostics. */
  flags: CollapseFlag[];
  /** Three findings in sentences: how much collapsed, what the worst variant kept, which stage lost it. */
  headlines: string[];
  best: BestRow[];
  charts: { id: string; title: string; kind: ChartSpec['kind'] }[];
  skipped: SkippedChart[];
  warnings: string[];
  /** Seconds per phase: load, exports, model, compile, svg, page. */
  timings: Record<string, number>;
}

/** The report's page model and charts from records alone: no I/O, so tests and callers can inspect it. */
export function buildReportModel(records: readonly ResultRecord[], o: ResolvedOptions, experiment: string, warnings: string[] = []): PageModel {
  const flags = detectCollapses(records, o.collapse, o.standouts, o.expect);
  const plan = buildCharts(records, flags, { select: o.select, maxDiagnosticPoints: o.maxDiagnosticPoints, collapse: o.collapse });
  const refs = references(records);
  const metrics = listMetrics(records);
  const merges = records.filter((r) => r.role === 'merge');
  const failed = records.filter((r) => r.status === 'failed');
  return {
    experiment,
    counts: { records: records.length, merges: merges.length, failed: failed.length, references: records.filter((r) => r.role !== 'merge').length, flagged: flags.length },
    thresholds: o.collapse,
    flags,
    flagGroups: groupFlags(flags, records),
    failed: failed.map((r) => ({ point: r.point, variant: r.variant, error: r.error ?? '(no error recorded)' })),
    best: bestPerVariant(records, refs, new Set(flags.map((f) => f.point))),
    bestMetrics: metrics.filter((m) => m.isSkill || m.isPerplexity || m.isDegenerate),
    charts: plan.charts,
    skipped: plan.skipped,
    samples: flags.map((flag) => ({ flag, comparisons: sampleComparisons(flag, records, o.samplesPerPoint) })),
    headlines: headlines(records, flags, o.collapse.parentFraction, o.expect),
    warnings,
  };
}

function groupFlags(flags: readonly CollapseFlag[], records: readonly ResultRecord[]): FlagGroup[] {
  const byPoint = new Map(records.map((r) => [r.point, r]));
  const total = new Map<string, number>();
  for (const r of records) if (r.role === 'merge') total.set(settingKey(r), (total.get(settingKey(r)) ?? 0) + 1);
  const groups = new Map<string, FlagGroup>();
  for (const f of flags) {
    const k = settingKey(byPoint.get(f.point)!);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { variant: f.variant, axes: Object.fromEntries(Object.entries(f.axes).filter(([a]) => a !== 'seed')), flags: [], seedsTotal: total.get(k) ?? 1 }));
    g.flags.push(f);
  }
  return [...groups.values()];
}

async function readExperimentConfig(expDir: string): Promise<{ name?: string; report?: ReportConfig }> {
  const file = path.join(expDir, 'experiment.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`, { file });
  }
  const obj = (raw ?? {}) as Record<string, unknown>;
  const name = typeof obj.name === 'string' ? obj.name : undefined;
  if (obj.report === undefined || obj.report === null) return { name };
  const p = ReportConfigSchema.safeParse(camelizeKeys(obj.report));
  if (!p.success) {
    const i = p.error.issues[0];
    const field = ['report', ...i.path.map(String)].join('.');
    throw new UserError(`${file}: field '${field}': ${i.message}`, { file, field });
  }
  return { name, report: p.data };
}

/**
 * Write the report of reports/EXP (or any folder holding results.jsonl): results.csv and
 * results.json, charts/*.svg and the self-contained index.html, each atomically. Options given
 * here override the experiment's `report:` block (reports/EXP/experiment.json).
 */
export async function generateReport(expDir: string, opts: ReportOptions = {}): Promise<ReportSummary> {
  const outDir = path.resolve(opts.outDir ?? expDir);
  const timings: Record<string, number> = {};
  let tPhase = performance.now();
  const lap = (name: string): void => {
    const now = performance.now();
    timings[name] = Number(((now - tPhase) / 1000).toFixed(3));
    tPhase = now;
  };
  const loaded = await readResultsJsonl(path.join(expDir, 'results.jsonl'));
  const exp = await readExperimentConfig(expDir);
  const o = resolveOptions(exp.report, opts);
  const records = sortRecords(loaded.records);
  const experiment = exp.name ?? records[0]?.experiment ?? path.basename(path.resolve(expDir));
  const warnings = [...loaded.warnings];
  lap('load');
  const exports = await writeExports(records, outDir);
  lap('exports');
  const model = buildReportModel(records, o, experiment, warnings);
  lap('model');

  // Compile once: the same Vega specs feed the SVGs and the page.
  const compiled = new Map(model.charts.map((c) => {
    const out = compileChart(c.vl);
    for (const w of out.warnings) warnings.push(`chart ${c.id}: ${w}`);
    return [c.id, out.vega] as const;
  }));
  lap('compile');
  const chartFiles: string[] = [];
  if (o.svg) {
    const chartsDir = path.join(outDir, 'charts');
    const rendered: { id: string; svg: string }[] = [];
    for (const c of model.charts) {
      const jobs = [{ id: c.id, vega: compiled.get(c.id)! }, ...(c.svgVariants ?? []).map((v) => ({ id: v.id, vega: compileChart(v.vl).vega }))];
      for (const j of jobs) {
        const { svg, warnings: w } = await renderSvg(j.vega);
        for (const x of w) warnings.push(`chart ${j.id}: ${x}`);
        rendered.push({ id: j.id, svg });
      }
    }
    await buildDirAtomic(chartsDir, async (tmp) => {
      for (const r of rendered) await fs.writeFile(path.join(tmp, `${r.id}.svg`), r.svg);
    });
    chartFiles.push(...rendered.map((r) => path.join(chartsDir, `${r.id}.svg`)));
  }
  lap('svg');
  const html = path.join(outDir, 'index.html');
  await writeFileAtomic(html, renderPage(model, await loadVegaAssets(), { renderer: opts.renderer ?? 'canvas', compiled }));
  lap('page');
  return {
    experiment,
    expDir: path.resolve(expDir),
    outDir,
    files: { html, ...exports, charts: chartFiles },
    counts: model.counts,
    flags: model.flags,
    headlines: model.headlines,
    best: model.best,
    charts: model.charts.map((c) => ({ id: c.id, title: c.title, kind: c.kind })),
    skipped: model.skipped,
    warnings,
    timings,
  };
}

/**
 * What `mergelab report EXP` means by EXP: a folder holding results.jsonl, an experiment name under
 * reports/, or the experiment file itself (experiments/NAME.yaml -> reports/NAME).
 */
export async function resolveExperimentDir(arg: string, cwd = process.cwd()): Promise<string> {
  const isDir = async (p: string): Promise<boolean> => fs.stat(p).then((s) => s.isDirectory(), () => false);
  const direct = path.resolve(cwd, arg);
  if (await isDir(direct)) return direct;
  const stem = path.basename(arg).replace(/\.(ya?ml|json)$/i, '');
  const underReports = path.resolve(cwd, 'reports', stem);
  if (await isDir(underReports)) return underReports;
  const known = await fs.readdir(path.resolve(cwd, 'reports')).catch(() => [] as string[]);
  throw new UserError(`experiment '${arg}': no folder ${path.relative(cwd, direct) || '.'} nor reports/${stem}; ${known.length ? `experiments with reports: ${known.join(', ')}` : 'reports/ is empty: run the experiment first (mergelab run experiments/NAME.yaml)'}`, { field: 'EXP' });
}
