import { afterAll, describe, expect, it } from 'vitest';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateReport } from '../../src/report/generate.js';
import { syntheticResults } from './synthetic.js';
import { CHROMIUM_PATH, checkReportInChromium, chromiumAvailable, type PageCheck } from './browser.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const temps: string[] = [];
const track = (dir: string): string => (temps.push(dir), dir);
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

const haveChromium = chromiumAvailable();
if (!haveChromium) console.warn(`SKIPPED browser test: ${CHROMIUM_PATH} not found (npm test's pretest installs Debian's chromium; run scripts/install-system-deps.sh as root)`);

/** What every page must be in a browser: offline, quiet, readable at the window's width, the recommendation first. */
function expectReadable(page: PageCheck, html: string, width: number): void {
  expect(page.consoleErrors).toEqual([]);
  expect(page.requests).toEqual([pathToFileURL(html).href]);
  expect(page.failedCharts).toBe(0);
  for (const c of page.charts) {
    expect(c.rendered, c.id).toBe(true);
    expect(c.marks, c.id).toBeGreaterThan(0);
  }
  // no sideways scroll
  expect(page.layout.width).toBe(width);
  expect(page.layout.scrollWidth).toBeLessThanOrEqual(width);
  // the recommendation comes before anything else on the page
  expect(page.layout.blocks[0]).toBe('recommendation');
  expect(page.layout.recommendationTop).not.toBeNull();
  expect(page.layout.othersTop!).toBeGreaterThan(page.layout.recommendationTop!);
  for (const [chart, legends] of Object.entries(page.legends)) {
    // no two entries of a legend drawn alike (two series with one colour would be)
    for (const l of legends) expect(new Set(l.looks).size, `${chart}: legend '${l.title}' ${JSON.stringify(l.looks)}`).toBe(l.looks.length);
    // no label a prefix of another: a label cut short reads as its neighbour
    const labels = legends.flatMap((l) => l.labels);
    for (const a of labels) for (const b of labels) if (a !== b) expect(b.startsWith(a), `${chart}: '${a}' is a prefix of '${b}'`).toBe(false);
  }
}

describe.skipIf(!haveChromium)('report page in headless Chromium', () => {
  const records = syntheticResults({ densities: [0.1, 0.3, 0.7, 1], weights: [1, 0.5], seeds: [1, 2], layers: 3, withFailure: true });

  it.each(['canvas', 'svg'] as const)('renders every chart with marks (%s), makes no network request and logs no error', async (renderer) => {
    const dir = track(await mkdtemp(path.join(tmpdir(), 'mergelab-browser-')));
    await writeFile(path.join(dir, 'results.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const summary = await generateReport(dir, { svg: false, maxDiagnosticPoints: 3, renderer });
    expect(summary.flags.length).toBeGreaterThan(0);
    const kinds = new Set(summary.charts.map((c) => c.kind));
    expect(kinds).toEqual(new Set(['skills', 'score_vs_axis', 'heatmap', 'layer_diagnostics']));

    const page = await checkReportInChromium(summary.files.html, { width: 1280 });
    expectReadable(page, summary.files.html, 1280);
    expect(page.charts.map((c) => c.id).sort()).toEqual(summary.charts.map((c) => c.id).sort());
    for (const c of page.charts) {
      expect(renderer === 'canvas' ? c.canvas : c.svg, c.id).toBe(true);
      // On SVG the marks are also in the DOM: the scenegraph count is what was drawn.
      if (renderer === 'svg') expect(c.domMarks, c.id).toBeGreaterThan(0);
    }
  });

  /** The committed experiment's report, regenerated from its committed records into a scratch folder. */
  async function committed(name: string): Promise<string> {
    const dir = track(await mkdtemp(path.join(tmpdir(), `mergelab-${name}-`)));
    for (const f of ['results.jsonl', 'experiment.json']) await copyFile(path.join(REPO, 'reports', name, f), path.join(dir, f));
    return (await generateReport(dir, { svg: false })).files.html;
  }

  it.each([1280, 800])('zoo-can-merge at %i px: readable, and its recommendation keeps at least half of both skills', async (width) => {
    const html = await committed('zoo-can-merge');
    const page = await checkReportInChromium(html, { width });
    expectReadable(page, html, width);
    const rec = page.layout.cards.find((c) => c.cls === 'rec')!;
    const kept = [...rec.text.matchAll(/share kept of (\w+)'s skill(\d+)%/g)].map((m) => [m[1], Number(m[2])]);
    expect(kept.map(([p]) => p).sort()).toEqual(['chat', 'math']);
    for (const [, pct] of kept) expect(pct).toBeGreaterThanOrEqual(50);
  });

  it.each([1280, 800])("seed-repro at %i px: readable, and the seed's own setting shown with its interval beside the recommendation", async (width) => {
    const html = await committed('seed-repro');
    const page = await checkReportInChromium(html, { width });
    expectReadable(page, html, width);
    const rec = page.layout.cards.find((c) => c.cls === 'rec')!;
    const seed = page.layout.cards.find((c) => c.cls === 'hl' && /the seed's own setting/i.test(c.title))!;
    expect(seed.row).toBe(rec.row);
    expect(seed.text).toContain('chained density=0.3 rescale=inverse_density w_stage1=1 w_chat=1');
    expect(seed.text).toMatch(/math\.exact_match_strict0\.\d\d \[0\.\d\d, 0\.\d\d\]/);
    expect(seed.text).toMatch(/against the recommendation[-+]\d+ points \[[-+]?\d+, [-+]?\d+\]/);
  });
});
