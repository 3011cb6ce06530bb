/**
 * The fast runner against the tfjs reference on the whole committed zoo (base, math, chat) and
 * all suites (math, chat, lm), in one run: for each model the fast runner then the reference, as
 * `mergelab eval` runs them (one process; the fast runner on its worker threads, the reference on
 * one thread as it always has). Prints both times, the ratio (target >= 5x), tokens per second
 * and whether every metric and kept sample is the same.
 *   npx tsx bench/eval-runners.ts [--limit N] [--batch-size 32] [--threads N] [--out bench/out/eval-runners.json]
 */
import path from 'node:path';
import { availableParallelism, cpus } from 'node:os';
import { evaluateModel, type EvalResult, type ZooRunner } from '../src/eval/evaluate.js';
import { writeFileAtomic } from '../src/util/atomic.js';
import { arg } from './args.js';

const zoo = path.resolve(arg('zoo') ?? 'data/zoo');
const limit = arg('limit') ? Number(arg('limit')) : undefined;
const batchSize = Number(arg('batch-size') ?? 32);
const threads = arg('threads') ? Number(arg('threads')) : undefined;
const out = path.resolve(arg('out') ?? 'bench/out/eval-runners.json');
const models = ['base', 'math', 'chat'];

const runs: Record<ZooRunner, { seconds: number; tokens: number; results: EvalResult[] }> = {
  fast: { seconds: 0, tokens: 0, results: [] },
  tfjs: { seconds: 0, tokens: 0, results: [] },
};
for (const m of models) {
  for (const runner of ['fast', 'tfjs'] as const) {
    let tokens = 0;
    const t0 = performance.now();
    const r = await evaluateModel(path.join(zoo, m), { suites: ['math', 'chat', 'lm'], limit, batchSize, samples: 1000, runner, threads, onTokens: (n) => (tokens += n) });
    const s = (performance.now() - t0) / 1000;
    runs[runner].seconds += s;
    runs[runner].tokens += tokens;
    runs[runner].results.push(r);
    process.stdout.write(`${m.padEnd(5)} ${runner.padEnd(5)} ${s.toFixed(1).padStart(6)} s  ${Object.entries(r.timings).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}  (${r.backend})\n`);
  }
}
const same = models.every((_, i) => {
  const a = runs.fast.results[i];
  const b = runs.tfjs.results[i];
  const metrics = JSON.stringify(a.metrics) === JSON.stringify(b.metrics);
  const samples = JSON.stringify(a.samples) === JSON.stringify(b.samples);
  return metrics && samples;
});
const ratio = runs.tfjs.seconds / runs.fast.seconds;
const lines = [
  `whole zoo, 3 models x math, chat, lm${limit ? ` (first ${limit} items)` : ' (full sets)'}, batch ${batchSize}, ${cpus()[0]?.model ?? '?'} x ${availableParallelism()}:`,
  `  reference (tfjs-wasm, 1 thread): ${runs.tfjs.seconds.toFixed(1)} s, ${(runs.tfjs.tokens / runs.tfjs.seconds).toFixed(0)} tokens/s`,
  `  fast (wasm SIMD, ${threads ?? availableParallelism()} threads):      ${runs.fast.seconds.toFixed(1)} s, ${(runs.fast.tokens / runs.fast.seconds).toFixed(0)} tokens/s`,
  `  ratio ${ratio.toFixed(2)}x (target >= 5x); metrics and samples identical: ${same ? 'yes' : 'NO'}`,
];
process.stdout.write(lines.join('\n') + '\n');
await writeFileAtomic(out, JSON.stringify({ limit: limit ?? null, batchSize, threads: threads ?? availableParallelism(), cpu: cpus()[0]?.model, seconds: { fast: runs.fast.seconds, tfjs: runs.tfjs.seconds }, tokens: { fast: runs.fast.tokens, tfjs: runs.tfjs.tokens }, ratio, identical: same }, null, 2) + '\n');
if (!same) process.exit(1);
