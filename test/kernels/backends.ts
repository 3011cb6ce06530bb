/** The backends every kernel and method test runs against. */
import { getKernels } from '../../src/kernels/index.js';
import { TypedKernels } from '../../src/kernels/typed.js';
import type { Kernels } from '../../src/kernels/types.js';

export interface BackendCase {
  label: string;
  make: () => Promise<Kernels>;
}

function tfjsCase(label: string, name: 'tfjs' | 'tfjs-cpu', chunk: number): BackendCase {
  return {
    label,
    make: async () => {
      const { loadTfjsKernels } = await import('../../src/kernels/tfjs.js');
      return (await loadTfjsKernels(name, { required: true, chunk }))!;
    },
  };
}

/** Method tests: typed, and tfjs on whatever loads here (wasm, else cpu). */
export const BACKENDS: BackendCase[] = [
  { label: 'typed', make: async () => new TypedKernels({ threads: 1 }) },
  tfjsCase('tfjs', 'tfjs', 1 << 16),
];

/** Kernel tests: tfjs with 1000-element chunks so chunk seams are exercised, and tfjs's cpu backend too. */
export const KERNEL_BACKENDS: BackendCase[] = [
  BACKENDS[0],
  tfjsCase('tfjs', 'tfjs', 1000),
  tfjsCase('tfjs-cpu', 'tfjs-cpu', 1000),
];

export { getKernels };

/** Deterministic pseudo-random floats for test data (not the mask RNG). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = lcg(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) {
      throw new Error(`element ${i}: got ${a}, expected ${e} (tol ${tol})`);
    }
  }
}
