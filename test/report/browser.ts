import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Debian's chromium: playwright cannot download its own browser on this machine. */
export const CHROMIUM_PATH = process.env.MERGELAB_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export const chromiumAvailable = (): boolean => existsSync(CHROMIUM_PATH);

export interface ChartCheck {
  id: string;
  rendered: boolean;
  svg: boolean;
  canvas: boolean;
  /** Items of data-driven marks in the chart's scenegraph (what canvas or SVG draws). */
  marks: number;
  /** Elements inside SVG mark groups (0 on canvas). */
  domMarks: number;
}

/** What a reader sees of one legend: its entries' labels and how each entry is drawn. */
export interface LegendCheck {
  title: string;
  labels: string[];
  /** Per entry: fill, stroke, shape and dash of its symbol. */
  looks: string[];
}

export interface LayoutCheck {
  /** Window width the page was laid out in. */
  width: number;
  /** The document's scroll width: more than `width` means a sideways scroll. */
  scrollWidth: number;
  /** Ids of the top-level blocks of <main> in page order. */
  blocks: string[];
  /** Top of #recommendation and the smallest top of anything else in <main>. */
  recommendationTop: number | null;
  othersTop: number | null;
  /** The opening's cards side by side: class (rec, hl), title and text. */
  cards: { cls: string; title: string; text: string; row: number }[];
}

export interface PageCheck {
  /** From navigation to every chart settled, measured outside the page. */
  wallMs: number;
  /** From the boot script's start to every chart settled, measured in the page. */
  inPageMs: number;
  /** CPU time of the page's renderer process (all its threads) from navigation to every chart settled (CDP ProcessTime): what the page costs, whatever else the machine is doing. */
  rendererCpuMs: number;
  charts: ChartCheck[];
  failedCharts: number;
  /** Every request the page or its workers made, the page's own URL included. */
  requests: string[];
  consoleErrors: string[];
  consoleWarnings: string[];
  /** Chart id -> its legends as drawn. */
  legends: Record<string, LegendCheck[]>;
  layout: LayoutCheck;
}

/*
 * Runs in the page. A string, not a function: tsx/esbuild wrap named inner functions in a `__name`
 * helper that does not exist in the page. It counts items of data-driven marks (role 'mark')
 * through groups and facets in each chart's scenegraph; axes and legends are not counted.
 */
const IN_PAGE_CHECK = `(() => {
  const count = (m) => {
    let n = 0;
    for (const it of m.items || []) {
      if (m.marktype === 'group') for (const child of it.items || []) n += count(child);
      else if (m.role === 'mark') n++;
    }
    return n;
  };
  const legendsOf = (root) => {
    const out = [];
    const walk = (node, cur) => {
      for (const it of node.items || []) {
        const role = node.role;
        let here = cur;
        if (role === 'legend') {
          here = { title: '', labels: [], looks: [] };
          out.push(here);
        }
        if (here && role === 'legend-title' && it.text) here.title = String(it.text);
        if (here && role === 'legend-label' && it.text !== undefined) here.labels.push(String(it.text));
        if (here && role === 'legend-symbol') here.looks.push([it.fill, it.stroke, it.shape, JSON.stringify(it.strokeDash || null)].join('|'));
        if (it.items) walk(it, here);
      }
    };
    walk({ items: [root] }, null);
    return out;
  };
  const r = window.__report;
  const legends = {};
  for (const id of Object.keys(r.views)) legends[id] = legendsOf(r.views[id].scenegraph().root).filter((l) => l.looks.length > 0);
  const main = document.querySelector('main') || document.body;
  const blocks = Array.from(main.children);
  const rec = document.getElementById('recommendation');
  const others = blocks.filter((b) => b !== rec && b.getBoundingClientRect().height > 0);
  const layout = {
    width: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    blocks: blocks.map((b) => b.id || b.tagName.toLowerCase()),
    recommendationTop: rec ? rec.getBoundingClientRect().top + window.scrollY : null,
    othersTop: others.length ? Math.min(...others.map((b) => b.getBoundingClientRect().top + window.scrollY)) : null,
    cards: Array.from(document.querySelectorAll('#recommendation .cards')).flatMap((row, i) => Array.from(row.querySelectorAll('.card')).map((c) => ({
      cls: c.className.replace('card', '').trim(),
      title: (c.querySelector('.card-title') || {}).textContent || '',
      text: c.textContent || '',
      row: i,
    }))),
  };
  const charts = Array.from(document.querySelectorAll('.chart')).map((el) => {
    const id = el.dataset.chart || el.id;
    const view = r.views[id];
    return {
      id,
      rendered: el.dataset.rendered === 'true',
      svg: el.querySelector('svg') !== null,
      canvas: el.querySelector('canvas') !== null,
      marks: view ? count(view.scenegraph().root) : 0,
      domMarks: el.querySelectorAll('.role-mark > *').length,
    };
  });
  return { ms: r.ms, failed: r.failed, charts, legends, layout };
})()`;

/**
 * Open a generated report in headless Chromium and report what rendered, what was requested and
 * what the console said. For tests and the benchmark; playwright-core is a dev dependency, hence
 * the dynamic import.
 */
export async function checkReportInChromium(htmlPath: string, opts: { timeoutMs?: number; screenshot?: string; fullPage?: boolean; width?: number } = {}): Promise<PageCheck> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: opts.width ?? 1400, height: 900 } });
    const url = pathToFileURL(htmlPath).href;
    const requests: string[] = [];
    const consoleErrors: string[] = [];
    const consoleWarnings: string[] = [];
    context.on('request', (r) => requests.push(r.url()));
    // Anything but the page itself is refused, so a stray fetch fails loudly instead of leaking.
    await context.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
      else if (m.type() === 'warning') consoleWarnings.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    const processTime = async (): Promise<number> => ((await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'ProcessTime')?.value ?? NaN) * 1000;
    const cpu0 = await processTime();
    const t0 = performance.now();
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction('window.__report && window.__report.done === true', null, { timeout: opts.timeoutMs ?? 60_000 });
    const wallMs = performance.now() - t0;
    const rendererCpuMs = (await processTime()) - cpu0;
    const state = (await page.evaluate(IN_PAGE_CHECK)) as { ms: number; failed: number; charts: ChartCheck[]; legends: Record<string, LegendCheck[]>; layout: LayoutCheck };
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: opts.fullPage ?? false });
    return { wallMs, rendererCpuMs, inPageMs: state.ms, charts: state.charts, failedCharts: state.failed, requests, consoleErrors, consoleWarnings, legends: state.legends, layout: state.layout };
  } finally {
    await browser.close();
  }
}
