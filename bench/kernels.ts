/**
 * Kernel throughput: task_arithmetic, ties and dare_ties (two models onto a base, whole-tensor
 * mergeTensor calls) on the typed backend with one thread and with worker threads, and on tfjs
 * (wasm here), all in the same run; then magnitude top-k by radix selection against sorting a copy.
 * GB/s counts float32 input bytes (base + models). Ratios are against typed x1 in this run.
 *   npx tsx bench/kernels.ts [--m 16] [--threads N] [--skip-tfjs] [--reps 2]
 * --m is millions of elements per tensor (64 is the reference size: between a 7B Llama's MLP
 * matrices, 45 M, and its embeddings, 131 M).
 */
import { availableParallelism, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { getKernels } from '../src/kernels/index.js';
import { kthLargestAbs } from '../src/kernels/select.js';
import { TypedKernels, allocShared } from '../src/kernels/typed.js';
import type { Kernels } from '../src/kernels/types.js';
import { getMethod } from '../src/methods/registry.js';
import type { TensorMergeInput } from '../src/methods/types.js';

function arg(argv: string[], name: string, def: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
}

function fill(a: Float32Array, seed: number, scale: number, add: Float32Array | null): void {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (add ? add[i] : 0) + scale * (s / 4294967296 - 0.5);
  }
}

export interface KernelBenchRow {
  method: string;
  backend: string;
  seconds: number;
  gbPerSec: number;
  ratioToTyped1: number;
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<{ rows: KernelBenchRow[]; selection: Record<string, number> }> {
  const M = arg(argv, 'm', 16);
  const N = Math.round(M * 1_000_000);
  const threads = arg(argv, 'threads', Math.max(2, availableParallelism()));
  const reps = arg(argv, 'reps', 2);
  const skipTfjs = argv.includes('--skip-tfjs');
  const shape = [N / 1000, 1000];
  const base = allocShared(N);
  fill(base, 1, 0.1, null);
  const xa = allocShared(N);
  fill(xa, 2, 0.002, base);
  const xb = allocShared(N);
  fill(xb, 3, 0.002, base);
  const bytes = 3 * 4 * N;

  const backends: Array<[string, () => Promise<Kernels>]> = [
    ['typed x1', async () => new TypedKernels({ threads: 1 })],
    [`typed x${threads}`, async () => new TypedKernels({ threads })],
  ];
  if (!skipTfjs) backends.push(['tfjs', () => getKernels('tfjs')]);

  const methods: Array<[string, Record<string, number>]> = [
    ['task_arithmetic', { weight: 0.5 }],
    ['ties', { weight: 0.5, density: 0.5 }],
    ['dare_ties', { weight: 0.5, density: 0.5 }],
  ];
  const rows: KernelBenchRow[] = [];
  console.log(`kernels bench: ${M}M float32 elements per tensor, 2 models + base (${(bytes / 1e9).toFixed(2)} GB input per merge), best of ${reps}, load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores`);
  // Repetitions are the outer loop, so a change in machine load hits every backend alike and the
  // ratios stay fair (this machine is shared; absolute figures move several-fold with its load).
  const kernels: Array<[string, Kernels]> = [];
  for (const [label, make] of backends) {
    const k = await make();
    kernels.push([label === 'tfjs' ? k.name : label, k]);
  }
  const best = new Map<string, number>();
  for (let r = 0; r < reps; r++) {
    for (const [name, k] of kernels) {
      for (const [method, params] of methods) {
        const inp: TensorMergeInput = {
          tensor: 'model.layers.0.mlp.up_proj.weight', shape, base, baseRef: 'base',
          models: [{ ref: 'a', data: xa, shape, params }, { ref: 'b', data: xb, shape, params }],
          global: {}, kernels: k, seed: 1, stage: 'bench', isEmbedding: false,
        };
        const t0 = performance.now();
        await getMethod(method).mergeTensor(inp);
        const s = (performance.now() - t0) / 1000;
        const key = `${method}\u0000${name}`;
        best.set(key, Math.min(best.get(key) ?? Infinity, s));
      }
    }
  }
  for (const [name, k] of kernels) {
    for (const [method] of methods) {
      const sec = best.get(`${method}\u0000${name}`)!;
      rows.push({ method, backend: name, seconds: sec, gbPerSec: bytes / sec / 1e9, ratioToTyped1: 0 });
      console.log(`  ${method.padEnd(16)} ${name.padEnd(10)} ${sec.toFixed(3)} s  ${(bytes / sec / 1e9).toFixed(2)} GB/s`);
    }
    await k.dispose();
  }
  for (const r of rows) {
    const ref = rows.find((x) => x.method === r.method && x.backend === 'typed x1')!;
    r.ratioToTyped1 = ref.seconds / r.seconds;
  }
  console.log('\nspeed relative to typed x1 (higher is faster):');
  for (const r of rows) console.log(`  ${r.method.padEnd(16)} ${r.backend.padEnd(10)} ${r.ratioToTyped1.toFixed(2)}x`);

  // Selection vs sorting a copy, on the |delta| of model a.
  const d = new Float32Array(N);
  for (let i = 0; i < N; i++) d[i] = xa[i] - base[i];
  const k = Math.floor(N / 2);
  let t0 = performance.now();
  const thr = kthLargestAbs(d, k);
  const selectS = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const copy = Float32Array.from(d, Math.abs);
  copy.sort();
  const sortS = (performance.now() - t0) / 1000;
  if (copy[N - k] !== thr) throw new Error(`selection disagrees with sort: ${thr} vs ${copy[N - k]}`);
  console.log(`load average at the end: ${loadavg()[0].toFixed(1)}`);
  console.log(`\ntop-k threshold (k = N/2): radix selection ${selectS.toFixed(3)} s, sorting a copy ${sortS.toFixed(3)} s (${(sortS / selectS).toFixed(1)}x)`);
  return { rows, selection: { selectSeconds: selectS, sortSeconds: sortS, ratio: sortS / selectS } };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
