import { afterAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { syntheticResults } from './synthetic.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const temps: string[] = [];
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

// The installed launcher, run from another folder, as a user would.
const mergelab = (args: string[], cwd: string) => execa('node', [path.join(REPO, 'bin/mergelab.js'), ...args], { cwd, reject: false, all: true });

describe('mergelab report', () => {
  it('reports reports/EXP by name into --out, charting --select points, and names a missing experiment', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'mergelab-cli-report-'));
    temps.push(root);
    const exp = path.join(root, 'reports', 'syn');
    await mkdir(exp, { recursive: true });
    const records = syntheticResults({ densities: [0.3, 1], weights: [1], seeds: [1], layers: 2, samplesPerSuite: 1 });
    await writeFile(path.join(exp, 'results.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const pick = 'chained-d1-w1-l1-s1';
    const r = await mergelab(['report', 'syn', '--out', 'out', '--select', pick, '--no-svg', '--json', '--degenerate-rate', '0.9'], root);
    expect(r.exitCode, r.all).toBe(0);
    const s = JSON.parse(r.stdout) as { outDir: string; files: { charts: string[] }; flags: { violations: { rule: string }[] }[]; charts: { kind: string }[] };
    expect(s.outDir).toBe(path.join(root, 'out'));
    expect((await readdir(path.join(root, 'out'))).sort()).toEqual(['index.html', 'results.csv', 'results.json', 'results.xxh64']);
    expect(s.files.charts).toEqual([]);
    expect(s.flags.flatMap((f) => f.violations.map((v) => v.rule))).not.toContain('quality_rate');
    expect(s.charts.map((c) => c.kind)).toContain('layer_diagnostics');

    const missing = await mergelab(['report', 'nope'], root);
    expect(missing.exitCode).toBe(1); // a problem with the input (README, exit codes)
    expect(missing.stderr).toMatch(/^mergelab: experiment 'nope': .*experiments with reports: syn/);
  });
});
