/**
 * Evaluates the whole committed zoo (base, math, chat) on all three suites with the built-in
 * evaluator, sequentially in one process as `mergelab eval` would, and prints the score table
 * and the wall time (target: under two minutes on this machine).
 * `--jobs 2` evaluates two models at once in child processes (one per core).
 *   npx tsx bench/eval-zoo.ts [--zoo data/zoo] [--limit N] [--batch-size 32] [--jobs 1] [--out bench/out/eval-zoo.json]
 */
import path from 'node:path';
import os from 'node:os';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execa } from 'execa';
import pLimit from 'p-limit';
import { evaluateModel, type EvalResult } from '../src/eval/evaluate.js';
import { writeFileAtomic } from '../src/util/atomic.js';
import { arg } from './args.js';

const zoo = path.resolve(arg('zoo') ?? 'data/zoo');
const limit = arg('limit') ? Number(arg('limit')) : undefined;
const batchSize = Number(arg('batch-size') ?? 32);
const out = path.resolve(arg('out') ?? 'bench/out/eval-zoo.json');
const jobs = Number(arg('jobs') ?? 1);
const models = ['base', 'math', 'chat'].filter((m) => existsSync(path.join(zoo, m, 'config.json')));
if (models.length === 0) {
  process.stderr.write(`no zoo models under ${zoo} (expected base/, math/, chat/ with config.json)\n`);
  process.exit(1);
}

const t0 = performance.now();
const results: EvalResult[] = new Array(models.length);
const report = (m: string, r: EvalResult) => {
  const t = Object.entries(r.timings).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ');
  process.stdout.write(`${m}: ${t}\n`);
};
if (jobs <= 1) {
  for (const [i, m] of models.entries()) {
    results[i] = await evaluateModel(path.join(zoo, m), { suites: ['math', 'chat', 'lm'], limit, batchSize, samples: 3 });
    report(m, results[i]);
  }
} else {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'eval-zoo-'));
  const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../src/cli/main.ts');
  const pool = pLimit(jobs);
  await Promise.all(
    models.map((m, i) =>
      pool(async () => {
        const file = path.join(tmp, `${m}.json`);
        await execa('npx', ['tsx', cli, 'eval', path.join(zoo, m), '--suite', 'math,chat,lm', '--batch-size', String(batchSize), '--samples', '3', '--out', file, ...(limit ? ['--limit', String(limit)] : [])], { stdio: 'ignore' });
        results[i] = JSON.parse(readFileSync(file, 'utf8')) as EvalResult;
        report(m, results[i]);
      }),
    ),
  );
  rmSync(tmp, { recursive: true, force: true });
}
const wall = (performance.now() - t0) / 1000;

const cols: Array<[string, string, string]> = [
  ['math', 'exact_match_strict', 'math strict'],
  ['math', 'exact_match_flexible', 'math flex'],
  ['math', 'degenerate_rate', 'math degen'],
  ['chat', 'prompt_level_strict', 'chat p-strict'],
  ['chat', 'prompt_level_loose', 'chat p-loose'],
  ['chat', 'inst_level_strict', 'chat i-strict'],
  ['chat', 'inst_level_loose', 'chat i-loose'],
  ['chat', 'degenerate_rate', 'chat degen'],
  ['lm', 'perplexity', 'lm ppl'],
  ['lm', 'nll_per_token', 'lm nll/tok'],
];
const header = ['model', ...cols.map((c) => c[2])];
const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
for (const [i, r] of results.entries()) {
  const cells = cols.map(([s, m]) => {
    const v = r.metrics[s]?.[m];
    if (v === undefined) return '-';
    return m === 'perplexity' || m === 'nll_per_token' ? v.toFixed(3) : `${(100 * v).toFixed(1)}%`;
  });
  lines.push(`| ${models[i]} | ${cells.join(' | ')} |`);
}
process.stdout.write(lines.join('\n') + '\n');
process.stdout.write(`whole zoo, ${models.length} models x 3 suites${limit ? ` (limit ${limit})` : ''}, ${jobs} job(s): ${wall.toFixed(1)} s wall (target < 120 s); backend ${results[0].backend}\n`);
await writeFileAtomic(out, JSON.stringify({ wallSec: wall, limit: limit ?? null, batchSize, jobs, results }, null, 2) + '\n');
