import { afterAll, describe, expect, it } from 'vitest';
import { rm, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateReport } from '../../src/report/generate.js';
import { syntheticResults } from '../../src/report/synthetic.js';
import { CHROMIUM_PATH, checkReportInChromium, chromiumAvailable } from '../../src/report/browser.js';

const temps: string[] = [];
const track = (dir: string): string => (temps.push(dir), dir);
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

const haveChromium = chromiumAvailable();
if (!haveChromium) console.warn(`SKIPPED browser test: ${CHROMIUM_PATH} not found (npm test's pretest installs Debian's chromium; run scripts/install-system-deps.sh as root)`);

describe.skipIf(!haveChromium)('report page in headless Chromium', () => {
  const records = syntheticResults({ densities: [0.1, 0.3, 0.7, 1], weights: [1, 0.5], seeds: [1, 2], layers: 3, withFailure: true });

  it.each(['canvas', 'svg'] as const)('renders every chart with marks (%s), makes no network request and logs no error', async (renderer) => {
    const dir = track(await mkdtemp(path.join(tmpdir(), 'mergelab-browser-')));
    await writeFile(path.join(dir, 'results.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const summary = await generateReport(dir, { svg: false, maxDiagnosticPoints: 3, renderer });
    expect(summary.flags.length).toBeGreaterThan(0);
    const kinds = new Set(summary.charts.map((c) => c.kind));
    expect(kinds).toEqual(new Set(['score_vs_axis', 'heatmap', 'parent_fraction', 'layer_diagnostics']));

    const page = await checkReportInChromium(summary.files.html);
    expect(page.consoleErrors).toEqual([]);
    expect(page.requests).toEqual([pathToFileURL(summary.files.html).href]);
    expect(page.failedCharts).toBe(0);
    expect(page.charts.map((c) => c.id)).toEqual(summary.charts.map((c) => c.id));
    for (const c of page.charts) {
      expect(c.rendered, c.id).toBe(true);
      expect(renderer === 'canvas' ? c.canvas : c.svg, c.id).toBe(true);
      expect(c.marks, c.id).toBeGreaterThan(0);
      // On SVG the marks are also in the DOM: the scenegraph count is what was drawn.
      if (renderer === 'svg') expect(c.domMarks, c.id).toBeGreaterThan(0);
    }
  });
});
