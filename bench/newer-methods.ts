/**
 * The newer mergekit methods' mergeTensor on one Llama-shaped weight (rows of 4096), base + 3
 * models (2 for nuslerp, 1 for nearswap and arcee_fusion), against task_arithmetic on the same
 * tensor in the same run: time ratios, so the machine's load cancels.
 *   npx tsx bench/newer-methods.ts [--m 16] [--reps 3] [--backend typed|tfjs]
 */
import { getKernels } from '../src/kernels/index.js';
import type { Kernels } from '../src/kernels/types.js';
import { getMethod } from '../src/methods/registry.js';
import type { TensorMergeInput } from '../src/methods/types.js';

function option(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

function randomTensor(n: number, seed: number, around?: Float32Array): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 4294967296 - 0.5;
    out[i] = around ? around[i] + 0.01 * u : u;
  }
  return out;
}

const CASES: Array<{ method: string; models: number; global?: Record<string, unknown>; weights?: boolean; noBase?: boolean }> = [
  { method: 'task_arithmetic', models: 3, weights: true },
  { method: 'sce', models: 3, global: { select_topk: 0.1 } },
  { method: 'ram', models: 3 },
  { method: 'ramplus_tl', models: 3 },
  { method: 'multislerp', models: 3, weights: true },
  { method: 'karcher', models: 3, noBase: true },
  { method: 'nuslerp', models: 2, weights: true, global: { nuslerp_flatten: false } },
  { method: 'nearswap', models: 1, global: { t: 0.001 } },
  { method: 'arcee_fusion', models: 1 },
];

async function main(): Promise<void> {
  const cols = 4096;
  const rows = Math.max(1, Math.round((Number(option('m', '16')) * 2 ** 20) / cols));
  const reps = Number(option('reps', '3'));
  const kernels: Kernels = await getKernels(option('backend', 'typed') as 'typed');
  const N = rows * cols;
  const base = randomTensor(N, 1);
  const xs = [2, 3, 4].map((s) => randomTensor(N, s, base));
  console.log(`backend ${kernels.name}, tensor [${rows}, ${cols}] = ${(N / 2 ** 20).toFixed(1)}M elements, best of ${reps}`);
  const times: Record<string, number> = {};
  for (const c of CASES) {
    const input: TensorMergeInput = {
      tensor: 'model.layers.0.mlp.down_proj.weight',
      shape: [rows, cols],
      base: c.noBase ? null : base,
      baseRef: c.noBase ? null : 'base',
      models: xs.slice(0, c.models).map((data, i) => ({ ref: `m${i}`, data, shape: [rows, cols], params: (c.weights ? { weight: 1 / c.models } : {}) as Record<string, number> })),
      global: c.global ?? {},
      kernels,
      seed: 1,
      stage: 'bench',
      isEmbedding: false,
    };
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await getMethod(c.method).mergeTensor(input);
      best = Math.min(best, performance.now() - t0);
    }
    times[c.method] = best;
    const ratio = best / times.task_arithmetic;
    console.log(`${c.method.padEnd(16)} ${(best / 1000).toFixed(3).padStart(7)} s  ${ratio.toFixed(2).padStart(6)}x task_arithmetic`);
  }
  await kernels.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
