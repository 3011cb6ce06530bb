import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ResultRecord } from '../results/record.js';
import { readResultsJsonl, sortRecords, writeExports } from '../results/export.js';
import { buildDirAtomic, writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../util/errors.js';
import { settingKey } from './aggregate.js';
import { buildCharts, type ChartSpec, type SkippedChart } from './charts.js';
import { detectCollapses, references, type CollapseFlag } from './collapse.js';
import { fillDeclarations } from './declarations.js';
import { explainedMetrics, explainVariants } from './explain.js';
import { findings } from './headlines.js';
import { renderPage, type FlagGroup, type PageModel } from './html.js';
import { loadVegaAssets } from './assets.js';
import { metricCatalog, okMerges } from './metrics.js';
import { Noise } from './noise.js';
import { camelizeKeys, ReportConfigSchema, resolveOptions, type ReportConfig, type ReportOptions, type ResolvedOptions } from './options.js';
import { defaultGoals, Scoreboard, type Ranked, type Recommendation } from './recommend.js';
import { compileChart, renderSvg } from './render.js';
import { sampleComparisons } from './samples.js';
import { shapeMismatchNotes } from './crimes.js';
import { scorerLines } from './scorers.js';

export type { ReportOptions } from './options.js';

export interface ReportSummary {
  experiment: string;
  expDir: string;
  outDir: string;
  files: { html: string; csv: string; json: string; charts: string[] };
  counts: PageModel['counts'];
  /** Points past a collapse limit, worst first, with rule, numbers, noise and standout diagnostics. */
  flags: CollapseFlag[];
  /** The findings in sentences: what to use, how the highlighted settings compare, what collapsed, where a chain lost a skill. */
  headlines: string[];
  /** Per goal: the recommended setting's label and its objective. */
  recommendations: { goal: string; setting: string; objective: number; peers: number }[];
  best: { variant: string; setting: string; objective: number }[];
  charts: { id: string; title: string; kind: ChartSpec['kind'] }[];
  skipped: SkippedChart[];
  warnings: string[];
  /** Seconds per phase: load, exports, model, compile, svg, page. */
  timings: Record<string, number>;
}

/** The report's page model and charts from records alone: no I/O, so tests and callers can inspect it. */
export function buildReportModel(records: readonly ResultRecord[], o: ResolvedOptions, experiment: string, warnings: string[] = []): PageModel {
  const catalog = metricCatalog(records);
  if (catalog.undeclared.length) warnings.push(`metrics without a declaration (neither charted nor judged): ${catalog.undeclared.join(', ')}`);
  if (catalog.conflicts.length) warnings.push(`metrics declared differently by different records (the first declaration is used): ${catalog.conflicts.join(', ')}`);
  const metrics = catalog.metrics;
  const noise = new Noise(records, metrics, o.noise);
  const flags = detectCollapses(records, o.collapse, o.standouts, o.expect, noise);
  const refs = references(records);
  const board = new Scoreboard(records, metrics, refs, noise);
  const goals = o.goals.length ? o.goals : defaultGoals(board);
  for (const g of goals) {
    for (const p of g.keep ?? []) if (!board.parents().includes(p)) warnings.push(`goal '${g.name}': '${p}' is not a parent that owns a skill (parents: ${board.parents().join(', ') || 'none'})`);
    if (g.maximize && !metrics.some((m) => m.key === g.maximize)) warnings.push(`goal '${g.name}': metric ${g.maximize} is not measured`);
  }
  const recs = goals.map((g) => board.recommend(g, o.highlight)).filter((r): r is Recommendation => r !== undefined);
  for (const h of recs[0]?.unmatched ?? []) warnings.push(`highlight '${h}' matches no merge setting`);
  const owner = (m: { key: string }): string | undefined => board.owners.find((x) => x.metric.key === m.key)?.parent;
  const first = recs[0];
  // Diagnostics are read along a variant's main factor with the other factors held at a setting
  // the reader cares about: a highlighted one, else the variant's best.
  const reference = (variant: string): { record: ResultRecord; why: string } | undefined => {
    const h = first?.highlights.find((x) => x.ranked.row.group.variant === variant);
    if (h) return { record: h.ranked.row.group.records[0], why: h.label };
    const best = first?.ranked.find((x) => x.row.group.variant === variant);
    return best ? { record: best.row.group.records[0], why: best === first!.best ? 'the recommended setting' : `the best setting of '${variant}'` } : undefined;
  };
  const explained = explainedMetrics(metrics, okMerges(records));
  const explanations = explainVariants(records, metrics, noise, { expect: o.expect, skillOwner: owner, reference });
  const chosen = [
    ...(first ? [{ point: first.best.row.group.records[0].point, why: 'recommended' }] : []),
    ...(first?.highlights ?? []).map((h) => ({ point: h.ranked.row.group.records[0].point, why: h.label })),
    ...o.select.map((p) => ({ point: p, why: 'selected' })),
  ];
  const plan = buildCharts({ records, flags, board, rec: first, explained, select: chosen, maxDiagnosticPoints: o.maxDiagnosticPoints, collapse: o.collapse });
  const merges = records.filter((r) => r.role === 'merge');
  const okm = okMerges(records);
  const byVariant = new Map<string, number>();
  for (const r of okm) byVariant.set(r.variant, (byVariant.get(r.variant) ?? 0) + 1);
  const failed = records.filter((r) => r.status === 'failed');
  const groups = groupFlags(flags, records);
  const bestPerVariant: Ranked[] = [];
  for (const x of first?.ranked ?? []) if (!bestPerVariant.some((b) => b.row.group.variant === x.row.group.variant)) bestPerVariant.push(x);
  return {
    experiment,
    counts: { records: records.length, merges: merges.length, failed: failed.length, references: records.filter((r) => r.role !== 'merge').length, flagged: flags.filter((f) => f.collapsed).length, borderline: flags.filter((f) => !f.collapsed).length },
    thresholds: o.collapse,
    flags,
    flagGroups: groups,
    failed: failed.map((r) => ({ point: r.point, variant: r.variant, error: r.error ?? '(no error recorded)' })),
    board,
    recommendations: recs,
    bestPerVariant,
    explanations,
    explained,
    noise: { options: noise.opts, suites: noise.suites() },
    charts: plan.charts,
    skipped: plan.skipped,
    samples: groups.filter((g) => g.flags[0].collapsed).map((g) => ({ flag: g.flags[0], comparisons: sampleComparisons(g.flags[0], records, o.samplesPerPoint) })),
    headlines: findings(board, recs, flags, explanations, okm.length, byVariant),
    scoredBy: scorerLines(records),
    warnings,
    crimes: shapeMismatchNotes(records),
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
  const declared = await fillDeclarations(sortRecords(loaded.records));
  const records = declared.records;
  const experiment = exp.name ?? records[0]?.experiment ?? path.basename(path.resolve(expDir));
  const warnings = [...loaded.warnings, ...declared.warnings];
  lap('load');
  const exports = await writeExports(sortRecords(loaded.records), outDir);
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
    recommendations: model.recommendations.map((r) => ({ goal: r.goal.name, setting: r.best.row.group.label, objective: r.best.objective.value, peers: r.peers.length })),
    best: model.bestPerVariant.map((b) => ({ variant: b.row.group.variant, setting: b.row.group.label, objective: b.objective.value })),
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
