/**
 * What lending idle CPU slots to running evaluations saves on a sweep's wall time: the same small
 * zoo sweep (6 points and the 3 zoo models as references, fresh cache each time) run by this
 * checkout and by another commit (`--before`, extracted with `git archive`; by default the parent
 * of the commit that added the lending), alternately, back to back, so load from other processes
 * falls on both sides alike. Each side runs its built CLI (`node bin/mergelab.js`, as `npm start`
 * does; built before timing). Prints each run's wall time, the medians and their ratio, and checks
 * that both sides wrote the same records apart from timings. The default `--before` also lacks
 * everything merged after it (cache checks, external backends); pass a commit nearer to this one
 * with the lending reverted to measure the lending alone on newer code.
 *   npx tsx bench/sweep-tail.ts [--before REF] [--reps 2] [--jobs 2] [--limit 40] [--densities 0.3,0.7] [--weightings 3] [--out bench/out/sweep-tail.json]
 * `--densities 0.5 --weightings 2` makes 5 evaluations (2 points, 3 references): with equal
 * lengths the last one runs alone, the longest tail a 2-worker sweep can have.
 */
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { comparable, loadResults } from '../src/results/store.js';
import { writeFileAtomic } from '../src/util/atomic.js';
import { argOr as arg } from './args.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const before = arg('before', 'b024030~1');
const reps = Number(arg('reps', '2'));
const jobs = Number(arg('jobs', '2'));
const limit = Number(arg('limit', '40'));
const out = path.resolve(arg('out', 'bench/out/sweep-tail.json'));
const densities = arg('densities', '0.3,0.7').split(',').map(Number);
const weightings = Number(arg('weightings', '3'));
const zip = { w_stage1: [1, 0.5, 1], w_chat: [1, 0.5, 0.8], normalize: [false, true, false] };
const cut = <T>(xs: T[]) => JSON.stringify(xs.slice(0, weightings));
const points = densities.length * weightings;

/**
 * The seed's chain, by default at two densities and three weightings, one seed: 8 merges, 9
 * evaluations on 3 suites (the 6 points and the 3 references); they differ in length (a collapsed
 * merge generates to its limit), so workers finish unevenly and the last evaluations run alone.
 */
const experiment = `name: sweep-tail
models: {base: zoo:base, math: zoo:math, chat: zoo:chat}
seeds: [1]
eval: {suites: [math, chat, lm], limit: ${limit}, batch_size: 40, samples: 1}
variants:
  chained:
    recipe: |
      name: math_dare
      merge_method: dare_ties
      base_model: \${base}
      models:
        - model: \${base}
        - model: \${math}
          parameters: {weight: 1, density: \${density}}
      parameters: {normalize: true, int8_mask: true, rescale: l1}
      dtype: float32
      ---
      merge_method: task_arithmetic
      base_model: \${base}
      models:
        - model: math_dare
          parameters: {weight: \${w_stage1}}
        - model: \${chat}
          parameters: {weight: \${w_chat}}
      parameters: {normalize: \${normalize}}
      dtype: float32
    sweep:
      grid:
        density: ${JSON.stringify(densities)}
      zip:
        - w_stage1: ${cut(zip.w_stage1)}
          w_chat: ${cut(zip.w_chat)}
          normalize: ${cut(zip.normalize)}
`;

const tmp = mkdtempSync(path.join(tmpdir(), 'sweep-tail-'));
try {
  const expFile = path.join(tmp, 'sweep-tail.yaml');
  writeFileSync(expFile, experiment);
  const beforeDir = path.join(tmp, 'before');
  mkdirSync(beforeDir);
  await execa('sh', ['-c', `git -C "$0" archive "$1" | tar -x -C "$2"`, root, before, beforeDir]);
  symlinkSync(realpathSync(path.join(root, 'node_modules')), path.join(beforeDir, 'node_modules'));
  const trees = { after: root, before: beforeDir } as const;
  for (const dir of Object.values(trees)) await execa('node', ['scripts/build.mjs'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });

  const walls: Record<'after' | 'before', number[]> = { after: [], before: [] };
  const records: Record<'after' | 'before', string[]> = { after: [], before: [] };
  for (let rep = 0; rep < reps; rep++) {
    // Alternate which side goes first, so a drift in load does not favour one.
    const order = rep % 2 === 0 ? (['after', 'before'] as const) : (['before', 'after'] as const);
    for (const side of order) {
      const reports = path.join(tmp, `reports-${side}-${rep}`);
      const cli = path.join(trees[side], 'bin/mergelab.js');
      const load = loadavg()[0];
      const t0 = performance.now();
      await execa('node', [cli, 'run', expFile, '--jobs', String(jobs), '--reports', reports, '--zoo', path.join(root, 'data/zoo'), '--progress', 'none', '--no-report'], { cwd: trees[side], stdio: ['ignore', 'ignore', 'inherit'] });
      const s = (performance.now() - t0) / 1000;
      walls[side].push(s);
      const recs = (await loadResults(path.join(reports, 'sweep-tail', 'results.jsonl'))).records;
      records[side] = recs.map((r) => JSON.stringify(comparable(r))).sort();
      process.stdout.write(`rep ${rep + 1} ${side.padEnd(6)} ${s.toFixed(1).padStart(6)} s  (${recs.length} records, load average ${load.toFixed(1)} at start)\n`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const same = JSON.stringify(records.after) === JSON.stringify(records.before);
  const ratio = median(walls.before) / median(walls.after);
  process.stdout.write(
    [
      `${points}-point zoo sweep (${densities.length + points} merges, ${points + 3} evaluations of math, chat, lm at limit ${limit}), --jobs ${jobs}, ${cpus()[0]?.model ?? '?'} x ${availableParallelism()}:`,
      `  before (${before}): median ${median(walls.before).toFixed(1)} s of ${walls.before.map((w) => w.toFixed(1)).join(', ')}`,
      `  after (this checkout): median ${median(walls.after).toFixed(1)} s of ${walls.after.map((w) => w.toFixed(1)).join(', ')}`,
      `  ratio ${ratio.toFixed(2)}x; records identical apart from timings: ${same ? 'yes' : 'NO'}`,
    ].join('\n') + '\n',
  );
  await writeFileAtomic(out, JSON.stringify({ before, jobs, limit, densities, weightings, cpu: cpus()[0]?.model, walls, ratio, identical: same }, null, 2) + '\n');
  if (!same) process.exitCode = 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
