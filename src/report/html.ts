import type { Spec as VegaSpec } from 'vega';
import type { ResultRecord } from '../results/record.js';
import type { CollapseFlag, CollapseRule } from './collapse.js';
import type { BestRow } from './aggregate.js';
import type { ChartSpec, SkippedChart } from './charts.js';
import type { CollapseThresholds } from './options.js';
import type { SampleComparison, SampleOutput } from './samples.js';
import { fmt, formatAxisValue, type MetricInfo } from './metrics.js';

/** The library code inlined into the page, as classic-script source text. */
export interface VegaAssets {
  vega: string;
  vegaLite: string;
  vegaEmbed: string;
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
  counts: { records: number; merges: number; failed: number; references: number; flagged: number };
  thresholds: CollapseThresholds;
  flags: CollapseFlag[];
  /** Flags of one setting (its seeds) together, worst setting first. */
  flagGroups: FlagGroup[];
  failed: { point: string; variant: string; error: string }[];
  best: BestRow[];
  /** Columns of the best-point table. */
  bestMetrics: MetricInfo[];
  charts: ChartSpec[];
  skipped: SkippedChart[];
  samples: { flag: CollapseFlag; comparisons: SampleComparison[] }[];
  /** The findings a reader needs first (src/report/headlines.ts). */
  headlines: string[];
  warnings: string[];
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
  below_base: () => 'below the base',
  perplexity_explosion: (th) => `perplexity over ${th.perplexityFactor}x`,
  degenerate_outputs: (th) => `degenerate outputs over ${Math.round(th.degenerateRate * 100)}%`,
};

const anchor = (point: string): string => `s-${point.replace(/[^A-Za-z0-9_-]/g, '_')}`;

const axesText = (axes: ResultRecord['axes']): string =>
  Object.entries(axes).filter(([k]) => k !== 'seed').map(([k, v]) => `${k}=${formatAxisValue(v)}`).join(' ') || '-';

function flagsSection(m: PageModel): string {
  const th = m.thresholds;
  const rules = `score &lt; ${th.parentFraction}x best parent${th.belowBase ? `, score below base${th.baseMargin ? ` - ${th.baseMargin}` : ''}` : ''}, perplexity &gt; ${th.perplexityFactor}x base, degenerate rate &gt; ${th.degenerateRate}`;
  if (!m.flags.length) return `<section id="collapsed"><h2>Collapsed points: none</h2><p class="ok">No merged point broke a rule (${rules}).</p></section>`;
  const rows = m.flagGroups.map((g) => {
    const worst = g.flags[0];
    const byRule = new Map<CollapseRule, string[]>();
    for (const v of worst.violations) byRule.set(v.rule, [...(byRule.get(v.rule) ?? []), v.short]);
    const broken = [...byRule.entries()].map(([rule, msgs]) => `<li><b>${esc(RULE_LABEL[rule](th))}</b>: ${msgs.map(esc).join('; ')}</li>`).join('');
    const standouts = worst.standouts.length ? worst.standouts.map((s) => `<li>${esc(s.text)}</li>`).join('') : '<li class="muted">no diagnostics recorded</li>';
    const seeds = g.flags.map((f) => `<a href="#${anchor(f.point)}" title="${esc(f.point)}">${f.seed ?? esc(f.point)}</a>`).join(', ');
    const seedNote = g.flags.length > 1 ? `<div class="muted">numbers of seed ${worst.seed ?? '-'}, the worst</div>` : '';
    return `<tr><td>${esc(g.variant)}</td><td>${esc(axesText(g.axes))}</td><td>${seeds} <span class="muted">(${g.flags.length} of ${g.seedsTotal})</span></td><td><ul>${broken}</ul>${seedNote}</td><td><ul>${standouts}</ul></td></tr>`;
  });
  return `<section id="collapsed"><h2>Collapsed points: ${m.flags.length} of ${m.counts.merges}</h2>
<p class="muted">Rules: ${rules}. One row per setting, worst first; a seed links to its generations.</p>
<table class="flags"><thead><tr><th>variant</th><th>setting</th><th>collapsed seeds</th><th>rules broken</th><th>diagnostics that stand out</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

function failedSection(m: PageModel): string {
  if (!m.failed.length) return '';
  return `<section id="failed"><h2>Failed points: ${m.failed.length}</h2><table><thead><tr><th>point</th><th>variant</th><th>error</th></tr></thead><tbody>
${m.failed.map((f) => `<tr><td>${esc(f.point)}</td><td>${esc(f.variant)}</td><td><pre>${esc(f.error)}</pre></td></tr>`).join('\n')}
</tbody></table></section>`;
}

function bestSection(m: PageModel): string {
  if (!m.best.length) return `<section id="best"><h2>Best point per variant</h2><p class="muted">No successful merge points.</p></section>`;
  const head = m.bestMetrics.map((x) => `<th>${esc(x.key)}</th>`).join('');
  const rows = m.best.map((b) => `<tr><td>${esc(b.variant)}</td><td>${esc(axesText(b.axes))}</td><td>${b.seeds}</td><td>${b.meanFraction === undefined ? 'n/a' : fmt(b.meanFraction, 2)}</td>${m.bestMetrics.map((x) => `<td>${fmt(b.means[x.key])}</td>`).join('')}<td${b.flaggedSeeds ? ' class="bad"' : ''}>${b.flaggedSeeds}</td></tr>`);
  return `<section id="best"><h2>Best point per variant</h2>
<p class="muted">The setting with the highest mean fraction of the best parent over skills, averaged over its seeds.</p>
<table><thead><tr><th>variant</th><th>setting</th><th>seeds</th><th>fraction of best parent</th>${head}<th>collapsed seeds</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

function chartsSection(m: PageModel): string {
  const charts = m.charts.map((c) => `<figure class="chart-figure"><h3>${esc(c.title)}</h3><p class="muted">${esc(c.description)}</p><div class="chart" id="chart-${esc(c.id)}" data-chart="${esc(c.id)}"></div></figure>`);
  const skipped = m.skipped.length ? `<ul class="muted">${m.skipped.map((s) => `<li>Not drawn: ${esc(s.chart)}: ${esc(s.reason)}</li>`).join('')}</ul>` : '';
  return `<section id="charts"><h2>Charts</h2>${skipped}\n${charts.join('\n')}</section>`;
}

const mark = (o: SampleOutput): string => (o.correct === true ? '<span class="good">&#10003;</span> ' : o.correct === false ? '<span class="bad">&#10007;</span> ' : '');

const refLabel = (r: SampleOutput): string => (r.name === r.role ? r.name : `${r.role} ${r.name}`);

function samplesSection(m: PageModel): string {
  if (!m.samples.length) return '';
  const blocks = m.samples.map(({ flag, comparisons }, i) => {
    if (!comparisons.length) return `<details id="${anchor(flag.point)}"${i < 3 ? ' open' : ''}><summary>${esc(flag.point)}</summary><p class="muted">No generations recorded for this point.</p></details>`;
    const refNames = [...new Set(comparisons.flatMap((c) => c.references.map(refLabel)))];
    const rows = comparisons.map((c) => {
      const cells = refNames.map((n) => {
        const r = c.references.find((x) => refLabel(x) === n);
        return r ? `<td>${mark(r)}<pre>${esc(r.output)}</pre></td>` : '<td class="muted">-</td>';
      });
      return `<tr><td><div class="muted">${esc(c.suite)} / ${esc(c.id)}</div><pre>${esc(c.prompt)}</pre></td><td class="this">${mark(c.point)}<pre>${esc(c.point.output)}</pre></td>${cells.join('')}</tr>`;
    });
    return `<details id="${anchor(flag.point)}"${i < 3 ? ' open' : ''}><summary>${esc(flag.point)} <span class="muted">${esc(flag.variant)} ${esc(axesText(flag.axes))}${flag.seed !== null ? ` seed ${flag.seed}` : ''}</span></summary>
<table class="samples"><thead><tr><th>prompt</th><th>this point</th>${refNames.map((n) => `<th>${esc(n)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></details>`;
  });
  return `<section id="samples"><h2>Generations of the collapsed points</h2><p class="muted">Each point's outputs next to the base's and parents' on the same prompts (matched by sample id).</p>\n${blocks.join('\n')}</section>`;
}

const CSS = `
body{font-family:Helvetica,Arial,"Liberation Sans",sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:14px;margin:16px 0 2px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}th,td{border:1px solid #e2e2e2;padding:4px 6px;vertical-align:top;text-align:left}th{background:#f6f6f6}
ul{margin:0;padding-left:16px}pre{white-space:pre-wrap;word-break:break-word;margin:0;font-family:Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:11px;max-width:380px}
.muted{color:#777;font-size:12px}.bad{color:#c62828;font-weight:bold}.good{color:#2e7d32;font-weight:bold}.ok{color:#2e7d32}
.flags td:nth-child(4){max-width:560px}.chart{min-height:40px;overflow-x:auto}figure{margin:0 0 18px}
td.this{background:#fff6f6}details{margin:8px 0}summary{cursor:pointer;font-weight:bold;font-size:13px}
.warn{background:#fff8e1;padding:6px 10px;font-size:12px}`;

/*
 * Charts render after the page is readable; each chart's failure is reported in its own box and on
 * the console (which the browser test watches). Specs arrive compiled to Vega (the same specs the
 * SVGs were rendered from), so the page spends no time in vega-lite's compiler. `window.__report`
 * tells a test or benchmark when every chart has settled and holds the views so a test can count
 * the marks in their scenegraphs (canvas has no DOM to inspect).
 */
const BOOT = `
(function () {
  var charts = JSON.parse(document.getElementById('chart-specs').textContent);
  var t0 = performance.now();
  var report = window.__report = { done: false, failed: 0, charts: charts.length, views: {} };
  var jobs = charts.map(function (c) {
    var el = document.getElementById('chart-' + c.id);
    return vegaEmbed(el, c.spec, { mode: c.mode, actions: false, renderer: c.renderer, logLevel: vega.Warn })
      .then(function (res) { report.views[c.id] = res.view; el.setAttribute('data-rendered', 'true'); })
      .catch(function (e) {
        report.failed++;
        el.textContent = 'This chart failed to render: ' + e;
        console.error('chart ' + c.id + ' failed: ' + e);
      });
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
  /** Charts already compiled to Vega, by chart id; others are embedded as Vega-Lite. */
  compiled?: ReadonlyMap<string, VegaSpec>;
}

/** The whole report as one self-contained HTML document. Pure: same model, same bytes. */
export function renderPage(m: PageModel, assets: VegaAssets, page: PageRender = { renderer: 'canvas' }): string {
  const specs = m.charts.map((c) => {
    const vg = page.compiled?.get(c.id);
    return vg ? { id: c.id, mode: 'vega', renderer: page.renderer, spec: vg } : { id: c.id, mode: 'vega-lite', renderer: page.renderer, spec: c.vl };
  });
  const c = m.counts;
  const warnings = m.warnings.length ? `<div class="warn">${m.warnings.map((w) => esc(w)).join('<br>')}</div>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mergelab report: ${esc(m.experiment)}</title>
<style>${CSS}</style>
</head><body>
<h1>mergelab report: ${esc(m.experiment)}</h1>
<p class="muted">${c.merges} merged points (${c.failed} failed), ${c.references} reference models, <b class="${c.flagged ? 'bad' : 'ok'}">${c.flagged} collapsed</b>. Files beside this page: results.csv, results.json, charts/*.svg.</p>
${warnings}
${m.headlines.length ? `<section id="headlines"><h2>Findings</h2><ol>${m.headlines.map((h) => `<li>${esc(h)}</li>`).join('')}</ol></section>` : ''}
${flagsSection(m)}
${failedSection(m)}
${bestSection(m)}
${chartsSection(m)}
${samplesSection(m)}
<script>${inlineScript(assets.vega, 'vega')}</script>
<script>${inlineScript(assets.vegaLite, 'vega-lite')}</script>
<script>${inlineScript(assets.vegaEmbed, 'vega-embed')}</script>
<script type="application/json" id="chart-specs">${scriptJson(specs)}</script>
<script>${BOOT}</script>
</body></html>
`;
}
