import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, readJsonl, seedShapedExperiment, tempDir, tinyZoo, withoutTimings } from './helpers.js';

/**
 * The real CLI on the tiny zoo: a 41-point seed-shaped sweep run with --jobs 1 and with --jobs 2
 * in separate report folders (so neither reuses the other's cache).
 */
describe('mergelab run on the tiny zoo', () => {
  let zoo: string;
  let work: string;
  let expFile: string;
  const runs: Record<string, { stdout: string; dir: string }> = {};

  beforeAll(async () => {
    zoo = await tinyZoo();
    work = await tempDir('sweep-run');
    expFile = path.join(work, 'seed-shaped.yaml');
    await fs.writeFile(expFile, seedShapedExperiment('seed-shaped'));
    for (const jobs of ['1', '2']) {
      const reports = path.join(work, `reports-j${jobs}`);
      const r = await cli(['run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', jobs, '--progress', 'lines', '--no-report']);
      if (r.exitCode !== 0) throw new Error(`run --jobs ${jobs} failed (${r.exitCode}):\n${r.all}`);
      runs[jobs] = { stdout: r.all ?? '', dir: path.join(reports, 'seed-shaped') };
    }
  });

  it('records at least 40 points, all ok, with metrics, diagnostics and samples', async () => {
    const rs = await readJsonl(path.join(runs['1'].dir, 'results.jsonl'));
    expect(rs.length).toBe(41);
    expect(rs.every((r) => r.status === 'ok')).toBe(true);
    expect(rs.filter((r) => r.role === 'base').map((r) => r.variant)).toEqual(['base']);
    expect(rs.filter((r) => r.role === 'parent').map((r) => r.variant).sort()).toEqual(['chat', 'math']);
    const chained = rs.find((r) => r.point === 'chained density=0.2 w_math=1 w_chat=1 normalize=false seed=1')!;
    expect(chained).toBeDefined();
    expect(Object.keys(chained.metrics as object).sort()).toEqual(['chat', 'lm']);
    expect(chained.recipe).toContain('density: 0.2');
    expect(chained.seed).toBe(1);
    const diags = chained.diagnostics as Array<{ stage: string; method: string; tensors: unknown[]; totals: Record<string, unknown> }>;
    expect(diags.map((d) => d.method)).toEqual(['dare_ties', 'task_arithmetic', 'final-vs-parents']);
    expect(diags.every((d) => d.tensors.length > 0)).toBe(true);
    const fvp = diags[2] as unknown as { parents: string[]; layers: unknown[]; totals: { retained: Record<string, number>; mergedDeltaRelToParent: Record<string, number> } };
    expect(fvp.parents.sort()).toEqual(['chat', 'math']);
    expect(fvp.layers.length).toBeGreaterThan(0);
    expect(Number.isFinite(fvp.totals.retained.math)).toBe(true);
    // Deterministic points carry no seed; ties is not swept over seeds.
    expect(rs.filter((r) => r.variant === 'ties').map((r) => r.seed)).toEqual([null, null]);
    expect((chained.samples as unknown[]).length).toBeGreaterThan(0);
  });

  it('gives identical records with --jobs 1 and --jobs 2, apart from timings', async () => {
    const a = await readJsonl(path.join(runs['1'].dir, 'results.jsonl'));
    const b = await readJsonl(path.join(runs['2'].dir, 'results.jsonl'));
    expect(b.length).toBe(a.length);
    expect(withoutTimings(b)).toEqual(withoutTimings(a));
  });

  it('merges each DARE stage once: stage-1 merges = distinct densities x seeds, shown in the run summary', () => {
    for (const jobs of ['1', '2']) {
      const out = runs[jobs].stdout;
      // 3 densities x 3 seeds, although 27 chained and 9 stage-1-alone points use that stage.
      expect(out).toMatch(/merges performed: 38 \(math_dare: 9, stage2: 27, stage1: 2\)/);
      expect(out).toMatch(/evaluations performed: 41/);
      expect(out).toMatch(/failed: 0/);
      expect(out).toMatch(/wall time: [\d.]+ s/);
    }
  });

  it('a second run reuses everything, and deleted checkpoints leave nothing behind', async () => {
    const reports = path.dirname(runs['1'].dir);
    const before = await fs.readFile(path.join(runs['1'].dir, 'results.jsonl'), 'utf8');
    const r = await cli(['run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--progress', 'none', '--no-report']);
    expect(r.exitCode).toBe(0);
    expect(r.all).toMatch(/merges performed: 0\b/);
    expect(r.all).toMatch(/evaluations performed: 0\b/);
    expect(await fs.readFile(path.join(runs['1'].dir, 'results.jsonl'), 'utf8')).toBe(before);
    expect(await fs.readdir(path.join(runs['1'].dir, 'cache', 'stages'))).toEqual([]);
    const csv = await fs.readFile(path.join(runs['1'].dir, 'results.csv'), 'utf8');
    expect(csv.trim().split('\n').length).toBe(42);
  });

  it('--dry-run lists every point and stage with what is cached', async () => {
    const reports = path.dirname(runs['2'].dir);
    const r = await cli(['run', expFile, '--zoo', zoo, '--reports', reports, '--dry-run']);
    expect(r.exitCode).toBe(0);
    const out = r.all ?? '';
    expect(out).toMatch(/41 points \(3 references, 38 merges\), 38 distinct stages/);
    expect(out.match(/^\[cached\] /gm)?.length).toBe(41);
    expect(out).toContain('math_dare (dare_ties, seed 1)');
    expect(out).toContain('merged earlier (checkpoint deleted, diagnostics kept)');
    expect(out).toMatch(/disk needed: /);
  });
});
