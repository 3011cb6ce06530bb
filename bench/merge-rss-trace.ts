/**
 * Where a merge's memory goes: runs one merge of the checkpoints bench/merge-memory.ts generated
 * and prints, every 10 tensors, RSS / array-buffer bytes / JS heap (MiB), and the peak RSS with the
 * tensor it happened at. Used to size the typed kernels' buffer reuse (KEEP_GENERATIONS).
 *
 *   npx tsx bench/merge-rss-trace.ts [ties|task_arithmetic|dare_ties] [--dir /tmp/mergelab-bench-merge]
 */
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runRecipe } from '../src/merge/engine.js';

const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const method = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'ties';
const i = process.argv.indexOf('--dir');
const dir = i >= 0 ? process.argv[i + 1] : path.join(os.tmpdir(), 'mergelab-bench-merge');
const out = path.join(dir, `trace-${method}`);
const text = `merge_method: ${method}\nbase_model: base\nmodels:\n  - model: math\n    parameters: {weight: 0.5, density: 0.5}\n  - model: chat\n    parameters: {weight: 0.5, density: 0.5}\ndtype: bfloat16\n`;
let current = 0;
let peak = 0;
let peakAt = -1;
const trace: string[] = [];
const timer = setInterval(() => {
  const r = rssMiB();
  if (r > peak) [peak, peakAt] = [r, current];
}, 20);
rmSync(out, { recursive: true, force: true });
await runRecipe({ text, file: `${method}.yaml`, dir }, {
  outDir: out,
  backend: 'typed',
  seed: 1,
  onProgress: (_s, p) => {
    current = p.tensorsDone;
    if (p.tensorsDone % 10 === 0 || p.tensorsDone === p.tensorsTotal) {
      const m = process.memoryUsage();
      trace.push(`${p.tensorsDone}: ${rssMiB().toFixed(0)}/${(m.arrayBuffers / 2 ** 20).toFixed(0)}/${(m.heapUsed / 2 ** 20).toFixed(0)}`);
    }
  },
});
clearInterval(timer);
rmSync(out, { recursive: true, force: true });
console.log(`${method}: peak RSS ${peak.toFixed(0)} MiB at tensor ${peakAt}`);
console.log(`tensor: RSS/arrayBuffers/heap MiB  ${trace.join('  ')}`);
