/**
 * Report rendering: a report over ~200 generated merge points (the seed-shaped sweep: density x
 * weight x rescale rule x seed, plus alternatives, with per-tensor diagnostics and samples) is
 * generated in Node (exports, charts/*.svg, index.html), then opened in headless Chromium; the
 * figure is the time from navigation until every chart has rendered, median of --runs, against
 * a 5 s target. Both page renderers are measured in the same run for comparison.
 *   npx tsx bench/report.ts [--points 200] [--runs 3]
 */
import { mkdtemp, rm, writeFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateReport } from '../src/report/generate.js';
import { syntheticResults } from '../test/report/synthetic.js';
import { checkReportInChromium, chromiumAvailable, CHROMIUM_PATH } from '../test/report/browser.js';
import { numArg as arg } from './args.js';

const TARGET_MS = 5000;
const points = arg('points', 200);
const runs = arg('runs', 3);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (!chromiumAvailable()) {
  console.log(`report bench: SKIPPED, ${CHROMIUM_PATH} not found`);
  process.exit(0);
}

// 51 merge points per seed with the default grid (2 rescale rules x 6 densities x (stage 1 alone
// + 3 weights) + 3 ties weights).
const seeds = Array.from({ length: Math.max(1, Math.ceil(points / 51)) }, (_, i) => i + 1);
const records = syntheticResults({ weights: [1, 0.5, 0.7], seeds, layers: 8, withFailure: true });
const merges = records.filter((r) => r.role === 'merge').length;
const root = await mkdtemp(path.join(os.tmpdir(), 'mergelab-bench-report-'));
try {
  await writeFile(path.join(root, 'results.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const t0 = performance.now();
  const summary = await generateReport(root, { renderer: 'canvas' });
  const nodeMs = performance.now() - t0;
  const htmlBytes = (await stat(summary.files.html)).size;
  console.log(`report bench: ${merges} merged points (${summary.counts.flagged} collapsed), ${summary.charts.length} charts, page ${(htmlBytes / 2 ** 20).toFixed(2)} MiB; ${os.cpus().length} CPUs`);
  console.log(`  node: exports + ${summary.files.charts.length} SVGs + page       ${(nodeMs / 1000).toFixed(2)} s (${Object.entries(summary.timings).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")})`);
  const results: Record<string, { wall: number; inPage: number; cpu: number }> = {};
  for (const renderer of ['canvas', 'svg'] as const) {
    if (renderer === 'svg') await generateReport(root, { renderer: 'svg', svg: false });
    const walls: number[] = [], inPage: number[] = [], cpu: number[] = [];
    for (let i = 0; i < runs; i++) {
      const c = await checkReportInChromium(summary.files.html);
      const bad = c.charts.filter((x) => !x.rendered || x.marks === 0);
      if (c.failedCharts || bad.length || c.consoleErrors.length) throw new Error(`page did not render cleanly: ${JSON.stringify({ bad, errors: c.consoleErrors })}`);
      walls.push(c.wallMs);
      inPage.push(c.inPageMs);
      cpu.push(c.rendererCpuMs);
    }
    results[renderer] = { wall: median(walls), inPage: median(inPage), cpu: median(cpu) };
    console.log(`  chromium (${renderer.padEnd(6)}): navigation -> all charts rendered ${(median(walls) / 1000).toFixed(2)} s wall (charts alone ${(median(inPage) / 1000).toFixed(2)} s), renderer CPU ${(median(cpu) / 1000).toFixed(2)} s; median of ${runs}`);
  }
  const w = results.canvas.wall;
  const load = os.loadavg()[0];
  console.log(`  page as shipped (canvas): ${(w / 1000).toFixed(2)} s wall = ${(w / TARGET_MS).toFixed(2)}x the 5 s target (${w < TARGET_MS ? 'meets' : 'MISSES'} it); renderer CPU ${(results.canvas.cpu / 1000).toFixed(2)} s = ${(results.canvas.cpu / TARGET_MS).toFixed(2)}x; svg renderer ${(results.svg.wall / w).toFixed(2)}x canvas wall`);
  console.log(`  load average ${load.toFixed(1)} on ${os.cpus().length} CPUs${load > os.cpus().length ? ': the machine is busy, wall times are inflated; the CPU figure is the fairer one' : ''}`);
} finally {
  await rm(root, { recursive: true, force: true });
}
