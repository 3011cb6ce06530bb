import type { Spec as VegaSpec } from 'vega';
import type { ResultRecord } from '../results/record.js';
import type { CollapseFlag, CollapseRule } from './collapse.js';
import { settingCrimes, type CrimeNote } from './crimes.js';
import type { ChartSpec, SkippedChart } from './charts.js';
import type { VariantExplanation } from './explain.js';
import { fmtChange, fmtInterval, fmtPct, fmtScore, pctDiff } from './format.js';
import { formatAxisValue, type MetricInfo } from './metrics.js';
import type { NoiseOptions, SuitePairing } from './noise.js';
import type { CollapseThresholds } from './options.js';
import type { Ranked, Recommendation, Scoreboard, Scored } from './recommend.js';
import { compileChart } from './render.js';
import type { SampleComparison, SampleOutput } from './samples.js';
import type { Interval, Verdict } from './stats.js';

/** The library code inlined into the page, as classic-script source text. */
export interface VegaAssets {
  vega: string;
}

export interface FlagGroup {
  variant: string;
  axes: ResultRecord['axes'];
  /** Worst seed first. */
  flags: CollapseFlag[];
  /** Seeds evaluated at this setting (flagged or not). */
  seedsTotal: number;
}

export interface PageModel {
  experiment: string;
  counts: { records: number; merges: number; failed: number; references: number; flagged: number; borderline: number };
  thresholds: CollapseThresholds;
  flags: CollapseFlag[];
  /** Flags of one setting (its seeds) together, collapsed settings first, worst first. */
  flagGroups: FlagGroup[];
  failed: { point: string; variant: string; error: string }[];
  board: Scoreboard;
  /** One per goal, the first goal's drawn on the skills chart. */
  recommendations: Recommendation[];
  /** The best setting of each variant under the first goal. */
  bestPerVariant: Ranked[];
  explanations: VariantExplanation[];
  /** Metrics the per-variant tables show. */
  explained: MetricInfo[];
  noise: { options: NoiseOptions; suites: SuitePairing[] };
  charts: ChartSpec[];
  skipped: SkippedChart[];
  samples: { flag: CollapseFlag; comparisons: SampleComparison[] }[];
  /** The findings a reader needs first (src/report/headlines.ts). */
  headlines: string[];
  /** Who scored the points, when not the built-in evaluator alone (src/report/scorers.ts). */
  scoredBy: string[];
  warnings: string[];
  /** Merged points whose models' tensors differed in shape (allow_crimes), marked wherever they are shown. */
  crimes: CrimeNote[];
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ESC[c]);

/** JSON safe inside a <script> element: no `</script`, no `<!--`, no line separators JS rejects. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/**
 * Library code as an inline classic script. `</script` would end the element early; it only occurs
 * inside string literals in minified code, where `<\/` means the same. `<!--` would switch the
 * HTML parser into script-escape mode and cannot be rewritten safely, so it is refused.
 */
export function inlineScript(code: string, name: string): string {
  if (/<!--/.test(code)) throw new Error(`${name}: contains '<!--', which cannot be inlined in a <script> element safely`);
  // A source-map comment would point devtools at a file that is not beside the page.
  return code.replace(/<\/(script)/gi, '<\\/$1').replace(/^\/\/# sourceMappingURL=.*$/gm, '');
}

const RULE_LABEL: Record<CollapseRule, (th: CollapseThresholds) => string> = {
  below_parent_fraction: (th) => `below ${th.parentFraction}x the best parent`,
  below_base: () => 'worse than the base',
  quality_vs_base: (th) => `quality ${th.perplexityFactor}x worse than the base`,
  quality_rate: (th) => `quality rate past ${Math.round(th.degenerateRate * 100)}%`,
};

const anchor = (point: string): string => `s-${point.replace(/[^A-Za-z0-9_-]/g, '_')}`;

/** Beside a setting merged with models left out of tensors whose shapes differ (allow_crimes); the title says which. */
const crimeMark = (what: string | null): string => (what ? ` <span class="bad" title="${esc(what)}">shapes differ (allow_crimes)</span>` : '');

const axesText = (axes: ResultRecord['axes']): string =>
  Object.entries(axes).filter(([k]) => k !== 'seed').map(([k, v]) => `${k}=${formatAxisValue(v)}`).join(' ') || '-';

/** Rows beyond the first few of a long table sit behind a click, so the page stays short. */
export function longTable(head: string, rows: readonly string[], opts: { first?: number; what?: string; cls?: string } = {}): string {
  const first = opts.first ?? 8;
  const table = (body: readonly string[]): string => `<div class="tw"><table${opts.cls ? ` class="${opts.cls}"` : ''}><thead>${head}</thead><tbody>${body.join('\n')}</tbody></table></div>`;
  if (rows.length <= first + 2) return table(rows);
  return `${table(rows.slice(0, first))}<details class="more"><summary>Show the other ${rows.length - first} ${opts.what ?? 'rows'}</summary>${table(rows.slice(first))}</details>`;
}

const VERDICT_CLASS: Record<Verdict, string> = { better: 'good', worse: 'bad', 'within noise': 'muted' };
const verdictCell = (v: Verdict | undefined): string => (v ? `<span class="${VERDICT_CLASS[v]}">${v}</span>` : '<span class="muted">no interval</span>');

const ivSpan = (s: string): string => (s ? ` <span class="iv">${s}</span>` : '');
const scoreCell = (m: MetricInfo, s: Scored | undefined): string => (s ? `${fmtScore(m, s.value)}${ivSpan(fmtInterval(m, s.interval))}` : 'n/a');
const pctCell = (s: Scored | undefined): string => {
  if (!s) return 'n/a';
  const iv: Interval | undefined = s.interval;
  return `${fmtPct(s.value)}${iv ? ivSpan(`[${fmtPct(iv.lo)}, ${fmtPct(iv.hi)}]`) : ''}`;
};

/** The page's charts by id, each placed once where it belongs; leftovers go to a section of their own. */
class ChartSlots {
  private readonly placed = new Set<string>();
  constructor(private readonly charts: readonly ChartSpec[]) {}
  figure(c: ChartSpec): string {
    this.placed.add(c.id);
    return `<figure class="chart-figure"><h3>${esc(c.title)}</h3><p class="muted">${esc(c.description)}</p><div class="chart" id="chart-${esc(c.id)}" data-chart="${esc(c.id)}"></div></figure>`;
  }
  take(pred: (c: ChartSpec) => boolean): string {
    return this.charts.filter((c) => !this.placed.has(c.id) && pred(c)).map((c) => this.figure(c)).join('\n');
  }
  rest(): string {
    return this.take(() => true);
  }
}

function settingCard(m: PageModel, rec: Recommendation, r: Ranked, title: string, cls: string): string {
  const board = m.board;
  const rows: string[] = [];
  if (!rec.goal.maximize) rows.push(`<tr><th>${esc(rec.objective)}</th><td><b>${pctCell(r.objective)}</b></td></tr>`);
  for (const p of board.parents()) rows.push(`<tr><th>share kept of ${esc(p)}'s skill</th><td>${pctCell(r.row.retention[p])}</td></tr>`);
  for (const x of m.explained) rows.push(`<tr><th>${esc(x.key)}</th><td>${scoreCell(x, r.row.scores[x.key])}</td></tr>`);
  const seeds = r.row.group.seeds.filter((s) => s !== null);
  rows.push(`<tr><th>points</th><td>${r.row.group.records.length}${seeds.length ? ` (seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')})` : ''}</td></tr>`);
  if (r !== rec.best) {
    const obj = rec.goal.maximize ? board.metrics.find((x) => x.key === rec.goal.maximize) : undefined;
    const diff = r.diff ? (obj ? `${fmtChange(obj, r.objective.value - rec.best.objective.value)} ${fmtInterval(obj, r.diff)}` : pctDiff(r.objective.value - rec.best.objective.value, r.diff)) : 'n/a';
    rows.push(`<tr><th>against the recommendation</th><td>${esc(diff)} ${verdictCell(r.verdict)}</td></tr>`);
  }
  const recipe = r.row.group.records[0].recipe;
  const random = r.row.group.records.some((x) => x.seed !== null);
  const recipeBlock = recipe
    ? `<details${cls === 'rec' ? ' open' : ''}><summary>Recipe (mergekit YAML${r.row.group.records.length > 1 ? ', the same for every seed' : ''})</summary><pre class="recipe">${esc(recipe)}</pre>${random ? `<p class="muted">A random method: merge with <code>mergelab merge recipe.yaml --out DIR --seed ${esc(String(r.row.group.records[0].seed))}</code> (model names are the experiment's).</p>` : '<p class="muted">Model names are the experiment\'s; map them with <code>--model-dir NAME=PATH</code>.</p>'}</details>`
    : '';
  return `<div class="card ${cls}"><div class="card-title">${esc(title)}</div><div class="setting">${esc(r.row.group.label)}${crimeMark(settingCrimes(r.row.group.records))}</div><table class="kv">${rows.join('')}</table>${recipeBlock}</div>`;
}

function peersTable(m: PageModel, rec: Recommendation): string {
  if (!rec.peers.length) return `<p class="muted">Every other setting is worse than the recommendation beyond the noise.</p>`;
  const pct = !rec.goal.maximize;
  const head = `<tr><th>setting</th><th>points</th><th>${esc(pct ? 'worst share kept' : rec.objective)}</th><th>against the recommendation</th>${m.explained.map((x) => `<th>${esc(x.key)}</th>`).join('')}</tr>`;
  const rows = rec.peers.map((r) => `<tr><td>${esc(r.row.group.label)}${crimeMark(settingCrimes(r.row.group.records))}</td><td>${r.row.group.records.length}</td><td>${pct ? pctCell(r.objective) : esc(String(r.objective.value))}</td><td>${r.diff ? (pct ? esc(pctDiff(r.objective.value - rec.best.objective.value, r.diff)) : esc(fmtInterval(m.board.metrics.find((x) => x.key === rec.goal.maximize)!, r.diff))) : 'n/a'} ${verdictCell(r.verdict)}</td>${m.explained.map((x) => `<td>${scoreCell(x, r.row.scores[x.key])}</td>`).join('')}</tr>`);
  return `<h3>Not worse than the recommendation within the noise: ${rec.peers.length} setting${rec.peers.length > 1 ? 's' : ''}</h3>
<p class="muted">Their difference from the recommendation on the goal's score has an interval that includes zero: the data cannot tell them apart from it.</p>
${longTable(head, rows, { first: 6, what: 'settings' })}`;
}

function noiseNote(m: PageModel): string {
  const o = m.noise.options;
  const suites = m.noise.suites.map((s) => (s.paired ? `${s.suite}: paired on the same ${s.items} items` : `${s.suite}: unpaired (${s.reason})`));
  return `<p class="muted noise">Every interval is ${Math.round(o.level * 100)}%: Wilson's for one point's accuracy, otherwise a bootstrap (${o.replicates} replicates, seed ${o.seed}) over items and, for a setting with several seeds, over seeds. Comparisons: ${esc(suites.join('; ') || 'none')}. "Better", "worse" and "collapsed" are claimed only when the interval of the difference excludes zero; otherwise the page says "within noise".</p>`;
}

function recommendationSection(m: PageModel, slots: ChartSlots): string {
  const c = m.counts;
  const scored = m.scoredBy.length ? `<p class="muted scored-by">Scored by ${m.scoredBy.map(esc).join('; ')}.</p>` : '';
  const lede = `<p class="lede">${c.merges} merged points (${c.failed} failed) and ${c.references} reference models in <b>${esc(m.experiment)}</b>; ${c.flagged} collapsed beyond the noise${c.borderline ? `, ${c.borderline} more past a limit within the noise` : ''}.</p>${scored}`;
  if (!m.recommendations.length) {
    return `<section id="recommendation"><h1>Which recipe to use: ${esc(m.experiment)}</h1>${lede}<p class="muted">No recommendation: no successful merge point has the scores a goal needs.</p></section>`;
  }
  const blocks = m.recommendations.map((rec, i) => {
    const cards = [settingCard(m, rec, rec.best, 'Recommended', 'rec'), ...rec.highlights.filter((h) => h.ranked !== rec.best).map((h) => settingCard(m, rec, h.ranked, h.label, 'hl'))];
    const chart = i === 0 ? slots.take((x) => x.kind === 'skills') : '';
    return `<div class="goal"><h2>Goal: ${esc(rec.goal.name)} <span class="muted">(scored by ${esc(rec.objective)}${rec.goal.variants ? `; variants ${esc(rec.goal.variants.join(', '))}` : ''})</span></h2>
<div class="cards">${cards.join('')}</div>
${peersTable(m, rec)}
${chart}</div>`;
  });
  return `<section id="recommendation"><h1>Which recipe to use: ${esc(m.experiment)}</h1>${lede}${noiseNote(m)}${blocks.join('\n')}</section>`;
}

function findingsSection(m: PageModel): string {
  if (!m.headlines.length) return '';
  return `<section id="headlines"><h2>Findings</h2><ol>${m.headlines.map((h) => `<li>${esc(h)}</li>`).join('')}</ol></section>`;
}

function effectTable(e: VariantExplanation): string {
  const metrics = [...new Set(e.effects.map((x) => x.metric))];
  const factors = [...new Set(e.effects.map((x) => x.factor))];
  if (!metrics.length || !factors.length) return '';
  const head = `<tr><th>factor</th><th>level</th><th>points</th>${metrics.map((x) => `<th>${esc(x.key)}</th><th>change from the best level</th>`).join('')}</tr>`;
  const rows: string[] = [];
  for (const f of factors) {
    f.levels.forEach((level, i) => {
      const cells = metrics.map((x) => {
        const fe = e.effects.find((y) => y.factor === f && y.metric === x)!;
        const l = fe.levels.find((y) => y.level === level);
        if (!l) return '<td>n/a</td><td></td>';
        const ch = l.change ? `${fmtChange(x, l.change.value)}${ivSpan(fmtInterval(x, l.change.interval))} ${verdictCell(l.change.verdict)}` : '<span class="muted">best level</span>';
        return `<td>${scoreCell(x, l.score)}</td><td>${ch}</td>`;
      });
      const points = e.effects.find((y) => y.factor === f)!.levels.find((y) => y.level === level)?.points ?? 0;
      rows.push(`<tr${i === 0 ? ' class="group"' : ''}><td>${i === 0 ? esc(f.name) : ''}</td><td>${esc(level)}</td><td>${points}</td>${cells.join('')}</tr>`);
    });
  }
  return `<p class="muted">Mean over every point at each level (the other factors averaged over), and its change from the factor's best level, with intervals paired on the same items where the records allow.</p>${longTable(head, rows, { first: 10, what: 'levels' })}`;
}

function stageTable(e: VariantExplanation): string {
  const s = e.stage;
  if (!s) return '';
  const head = `<tr><th>setting</th><th>seeds</th><th>metric</th><th>stage '${esc(s.earlierStage)}' alone ('${esc(s.prefix)}')</th><th>after '${esc(s.lastStage)}'</th><th>change</th></tr>`;
  const rows = s.rows.map((r) => `<tr><td>${esc(r.label)}</td><td>${r.seeds.map((x) => x ?? '-').join(', ')}</td><td>${esc(r.metric.key)}</td><td>${scoreCell(r.metric, r.earlier)}</td><td>${scoreCell(r.metric, r.full)}</td><td>${fmtChange(r.metric, r.change.value)}${ivSpan(fmtInterval(r.metric, r.change.interval))} ${verdictCell(r.change.verdict)}</td></tr>`);
  return `<h4>Which stage loses it</h4><p class="muted">Each setting of '${esc(s.variant)}' against '${esc(s.prefix)}' at the same ${esc(s.shared.join(', '))} and seed.</p>${longTable(head, rows, { first: 6, what: 'settings' })}`;
}

function whySection(m: PageModel, slots: ChartSlots): string {
  if (!m.explanations.length) return '';
  const blocks = m.explanations.map((e) => {
    const text = [...e.text.effects, ...e.text.stage, ...e.text.diagnostics];
    const charts = slots.take((c) => c.variant === e.variant);
    return `<div class="variant" id="why-${esc(e.variant.replace(/[^A-Za-z0-9_-]/g, '_'))}"><h3>${esc(e.variant)} <span class="muted">(${e.points} points)</span></h3>
${text.length ? `<ul class="sentences">${text.map((t) => `<li>${esc(t)}</li>`).join('')}</ul>` : ''}
${effectTable(e)}
${stageTable(e)}
${charts}</div>`;
  });
  return `<section id="why"><h2>Why: what moves the scores in each variant</h2>${blocks.join('\n')}</section>`;
}

function flagsSection(m: PageModel, slots: ChartSlots): string {
  const th = m.thresholds;
  const rules = `skill &lt; ${th.parentFraction}x the best parent${th.belowBase ? `, skill worse than the base${th.baseMargin ? ` by more than ${th.baseMargin}` : ''}` : ''}, headline quality metric ${th.perplexityFactor}x worse than the base, quality rate past ${th.degenerateRate}`;
  const diag = slots.take((c) => c.kind === 'layer_diagnostics') + crimesBlock(m);
  if (!m.flags.length) return `<section id="collapsed"><h2>Collapsed points: none</h2><p class="ok">No merged point broke a rule (${rules}).</p>${diag}</section>`;
  const crimesOf = new Map(m.crimes.map((c) => [c.point, c.text]));
  const rows = m.flagGroups.map((g) => {
    const worst = g.flags[0];
    const byRule = new Map<CollapseRule, string[]>();
    for (const v of worst.violations) byRule.set(v.rule, [...(byRule.get(v.rule) ?? []), `${v.short}${v.beyondNoise === false ? ' (within noise)' : v.beyondNoise === undefined ? ' (no interval)' : ''}`]);
    const broken = [...byRule.entries()].map(([rule, msgs]) => `<li><b>${esc(RULE_LABEL[rule](th))}</b>: ${msgs.map(esc).join('; ')}</li>`).join('');
    const standouts = worst.standouts.length ? worst.standouts.slice(0, 3).map((s) => `<li>${esc(s.text)}</li>`).join('') : '<li class="muted">no diagnostics recorded</li>';
    const seeds = g.flags.map((f) => `<a href="#${anchor(f.point)}" title="${esc(f.point)}">${f.seed ?? 'point'}</a>`).join(', ');
    const status = worst.collapsed ? '<span class="bad">collapsed</span>' : '<span class="muted">within noise of a limit</span>';
    const crimes = [...new Set(g.flags.flatMap((f) => crimesOf.get(f.point) ?? []))].join('; ');
    return `<tr><td>${esc(g.variant)}</td><td>${esc(axesText(g.axes))}${crimeMark(crimes || null)}</td><td>${status}</td><td>${seeds} <span class="muted">(${g.flags.length} of ${g.seedsTotal})</span></td><td><ul>${broken}</ul></td><td><ul>${standouts}</ul></td></tr>`;
  });
  const head = '<tr><th>variant</th><th>setting</th><th>status</th><th>seeds past a limit</th><th>rules broken (worst seed)</th><th>diagnostics that stand out</th></tr>';
  return `<section id="collapsed"><h2>Collapsed points: ${m.counts.flagged} of ${m.counts.merges}${m.counts.borderline ? ` (and ${m.counts.borderline} within the noise of a limit)` : ''}</h2>
<p class="muted">Rules: ${rules}. A point is collapsed when it is past a limit beyond the noise. One row per setting, collapsed first, worst first; a seed links to its generations.</p>
${longTable(head, rows, { first: 8, what: 'settings', cls: 'flags' })}
${diag}</section>`;
}

/** The points merged with models left out of some tensors: what a collapse there may come from. */
function crimesBlock(m: PageModel): string {
  if (!m.crimes.length) return '';
  const rows = m.crimes.map((c) => `<tr><td>${esc(c.point)}</td><td>${esc(c.variant)}</td><td>${esc(axesText(c.axes))}</td><td>${esc(c.text)}</td></tr>`);
  return `<h3>Merged despite shape mismatches: ${m.crimes.length} point${m.crimes.length === 1 ? '' : 's'}</h3>
<p class="muted">allow_crimes let these points merge models whose tensors differ in shape from the stage's reference model: each such model was left out of those tensors and embeddings were cropped to the common block, so their scores are not those of the recipe as written (the records' shapeMismatches list every tensor).</p>
${longTable('<tr><th>point</th><th>variant</th><th>setting</th><th>left out</th></tr>', rows, { first: 6, what: 'points' })}`;
}

function failedSection(m: PageModel): string {
  if (!m.failed.length) return '';
  return `<section id="failed"><h2>Failed points: ${m.failed.length}</h2>${longTable('<tr><th>point</th><th>variant</th><th>error</th></tr>', m.failed.map((f) => `<tr><td>${esc(f.point)}</td><td>${esc(f.variant)}</td><td><pre>${esc(f.error)}</pre></td></tr>`), { what: 'failures' })}</section>`;
}

function bestSection(m: PageModel): string {
  const rec = m.recommendations[0];
  if (!rec || !m.bestPerVariant.length) return `<section id="best"><h2>Best setting per variant</h2><p class="muted">No successful merge points.</p></section>`;
  const parents = m.board.parents();
  const pct = !rec.goal.maximize;
  const head = `<tr><th>variant</th><th>setting</th><th>points</th><th>${esc(pct ? 'worst share kept' : rec.objective)}</th>${parents.map((p) => `<th>kept of ${esc(p)}</th>`).join('')}${m.explained.map((x) => `<th>${esc(x.key)}</th>`).join('')}<th>against the recommendation</th></tr>`;
  const rows = m.bestPerVariant.map((b) => `<tr><td>${esc(b.row.group.variant)}</td><td>${esc(axesText(b.row.group.axes))}${crimeMark(settingCrimes(b.row.group.records))}</td><td>${b.row.group.records.length}</td><td>${pct ? pctCell(b.objective) : esc(String(b.objective.value))}</td>${parents.map((p) => `<td>${pctCell(b.row.retention[p])}</td>`).join('')}${m.explained.map((x) => `<td>${scoreCell(x, b.row.scores[x.key])}</td>`).join('')}<td>${b === rec.best ? '<b>recommended</b>' : verdictCell(b.verdict)}</td></tr>`);
  return `<section id="best"><h2>Best setting per variant</h2>
<p class="muted">Under the goal '${esc(rec.goal.name)}'; means over seeds with intervals.</p>
${longTable(head, rows, { what: 'variants' })}</section>`;
}

const mark = (o: SampleOutput): string => (o.correct === true ? '<span class="good">&#10003;</span> ' : o.correct === false ? '<span class="bad">&#10007;</span> ' : '');

const refLabel = (r: SampleOutput): string => (r.name === r.role ? r.name : `${r.role} ${r.name}`);

function samplesSection(m: PageModel): string {
  if (!m.samples.length) return '';
  const blocks = m.samples.map(({ flag, comparisons }) => {
    if (!comparisons.length) return `<details id="${anchor(flag.point)}"><summary>${esc(flag.point)}</summary><p class="muted">No generations recorded for this point.</p></details>`;
    const refNames = [...new Set(comparisons.flatMap((c) => c.references.map(refLabel)))];
    const rows = comparisons.map((c) => {
      const cells = refNames.map((n) => {
        const r = c.references.find((x) => refLabel(x) === n);
        return r ? `<td>${mark(r)}<pre>${esc(r.output)}</pre></td>` : '<td class="muted">-</td>';
      });
      return `<tr><td><div class="muted">${esc(c.suite)} / ${esc(c.id)}</div><pre>${esc(c.prompt)}</pre></td><td class="this">${mark(c.point)}<pre>${esc(c.point.output)}</pre></td>${cells.join('')}</tr>`;
    });
    return `<details id="${anchor(flag.point)}"><summary>${esc(flag.point)} <span class="muted">${esc(flag.variant)} ${esc(axesText(flag.axes))}${flag.seed !== null ? ` seed ${flag.seed}` : ''}</span></summary>
<div class="tw"><table class="samples"><thead><tr><th>prompt</th><th>this point</th>${refNames.map((n) => `<th>${esc(n)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div></details>`;
  });
  return `<section id="samples"><h2>Generations of the collapsed settings</h2><p class="muted">The worst seed of each collapsed setting, its outputs next to the base's and parents' on the same prompts (matched by sample id). Click a point to open it.</p>\n${blocks.join('\n')}</section>`;
}

function chartsSection(m: PageModel, slots: ChartSlots): string {
  const rest = slots.rest();
  const skipped = m.skipped.length ? `<details class="more"><summary>Charts not drawn (${m.skipped.length})</summary><ul class="muted">${m.skipped.map((s) => `<li>${esc(s.chart)}: ${esc(s.reason)}</li>`).join('')}</ul></details>` : '';
  if (!rest && !skipped) return '';
  return `<section id="charts"><h2>More charts</h2>${skipped}\n${rest}</section>`;
}

const CSS = `
*{box-sizing:border-box}
body{font:14px/1.45 Helvetica,Arial,"Liberation Sans",sans-serif;margin:0;color:#1a1a1a;background:#fff}
main{max-width:1180px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:22px;margin:4px 0 6px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}h3{font-size:15px;margin:16px 0 4px}h4{font-size:14px;margin:12px 0 4px}
.goal h2{margin-top:14px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}th,td{border:1px solid #d6d6d6;padding:4px 6px;vertical-align:top;text-align:left}th{background:#f3f3f3;font-weight:600}
tr.group td{border-top:2px solid #999}
.tw{max-width:100%;overflow-x:auto}
ul,ol{margin:0;padding-left:20px}li{margin:2px 0}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-family:Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px;max-width:100%}
pre.recipe{background:#f7f7f7;border:1px solid #ddd;padding:8px;margin:6px 0;max-height:300px;overflow:auto;font-size:11.5px}
code{font-family:Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px;background:#f3f3f3;padding:0 3px}
.muted{color:#555;font-size:12.5px}.iv{color:#555;font-size:11.5px;white-space:nowrap}
.bad{color:#b71c1c;font-weight:bold}.good{color:#1b5e20;font-weight:bold}.ok{color:#1b5e20}
.lede{font-size:15px;margin:2px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.card{flex:1 1 360px;min-width:0;border:1px solid #bbb;border-radius:6px;padding:10px 12px;background:#fafafa}
.card.rec{border:2px solid #1b5e20;background:#f3faf3}.card.hl{border:2px solid #6a4c93;background:#f7f4fb}
.card-title{font-weight:bold;font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#333}
.setting{font-size:16px;font-weight:bold;margin:4px 0 6px;word-break:break-word}
table.kv th{width:45%;background:#fff}table.kv{width:100%}
.chart{max-width:100%;overflow-x:auto;min-height:40px}figure{margin:8px 0 20px}
.variant{margin-bottom:22px}.sentences li{margin:4px 0}
td.this{background:#fff3f3}details{margin:8px 0}summary{cursor:pointer;font-weight:bold;font-size:13px}
details.more>summary{font-weight:normal;color:#0b5394}
.flags td:nth-child(5),.flags td:nth-child(6){min-width:220px}
.warn{background:#fff8e1;padding:6px 10px;font-size:12.5px;border:1px solid #f0d58a;margin:8px 0}
@media (max-width:820px){main{padding:10px 12px}.card{flex-basis:100%}}`;

/*
 * Charts render after the page is readable, drawn by vega's own View from specs compiled in Node
 * (no vega-lite or vega-embed in the page); each chart's failure is reported in its own box and
 * on the console (which the browser test watches). `window.__report` tells a test or benchmark
 * when every chart has settled and holds the views so a test can read their scenegraphs.
 */
const BOOT = `
(function () {
  var charts = JSON.parse(document.getElementById('chart-specs').textContent);
  var t0 = performance.now();
  var report = window.__report = { done: false, failed: 0, charts: charts.length, views: {} };
  var jobs = charts.map(function (c) {
    var el = document.getElementById('chart-' + c.id);
    var fail = function (e) {
      report.failed++;
      if (el) el.textContent = 'This chart failed to render: ' + e;
      console.error('chart ' + c.id + ' failed: ' + e);
    };
    try {
      var view = new vega.View(vega.parse(c.spec), { renderer: c.renderer, container: el, hover: true, logLevel: vega.Warn });
      return view.runAsync().then(function () { report.views[c.id] = view; el.setAttribute('data-rendered', 'true'); }, fail);
    } catch (e) {
      fail(e);
      return Promise.resolve();
    }
  });
  Promise.all(jobs).then(function () {
    report.ms = performance.now() - t0;
    report.done = true;
    document.body.setAttribute('data-charts-done', 'true');
  });
})();`;

/*
 * The page may run only its own inline code: no fetch, font, image or frame from anywhere. vega
 * compiles its expressions with Function(), hence 'unsafe-eval'.
 */
const CSP = "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

export interface PageRender {
  /** Canvas draws hundreds of points several times faster than SVG (see bench/report.ts). */
  renderer: 'canvas' | 'svg';
  /** Charts already compiled to Vega, by chart id; others are compiled here. */
  compiled?: ReadonlyMap<string, VegaSpec>;
}

/** The whole report as one self-contained HTML document. Pure: same model, same bytes. */
export function renderPage(m: PageModel, assets: VegaAssets, page: PageRender = { renderer: 'canvas' }): string {
  const specs = m.charts.map((c) => ({ id: c.id, renderer: page.renderer, spec: page.compiled?.get(c.id) ?? compileChart(c.vl).vega }));
  const slots = new ChartSlots(m.charts);
  const warnings = m.warnings.length ? `<div class="warn">${m.warnings.map((w) => esc(w)).join('<br>')}</div>` : '';
  const opening = recommendationSection(m, slots);
  const why = whySection(m, slots);
  const flags = flagsSection(m, slots);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mergelab report: ${esc(m.experiment)}</title>
<style>${CSS}</style>
</head><body><main>
${opening}
${findingsSection(m)}
${warnings}
${why}
${flags}
${failedSection(m)}
${bestSection(m)}
${chartsSection(m, slots)}
${samplesSection(m)}
<p class="muted">Files beside this page: results.csv, results.json, charts/*.svg.</p>
</main>
<script>${inlineScript(assets.vega, 'vega')}</script>
<script type="application/json" id="chart-specs">${scriptJson(specs)}</script>
<script>${BOOT}</script>
</body></html>
`;
}
