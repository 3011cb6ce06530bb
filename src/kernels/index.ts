/**
 * Backend selection. 'auto' takes tfjs-node-gpu when it loads (a CUDA machine), else the typed-array
 * kernels, which measure 3-7x faster than tfjs wasm for merging on a CPU. `kernels.name` is the
 * backend that actually runs and is what outputs record.
 */
import { UserError } from '../util/errors.js';
import { TypedKernels, type TypedOptions } from './typed.js';
import type { Kernels } from './types.js';

export type BackendName = 'auto' | 'typed' | 'tfjs' | 'tfjs-node-gpu' | 'tfjs-node' | 'tfjs-wasm' | 'tfjs-cpu';

export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'typed', 'tfjs', 'tfjs-node-gpu', 'tfjs-node', 'tfjs-wasm', 'tfjs-cpu'];

export function isBackendName(s: string): s is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(s);
}

export async function getKernels(name: BackendName = 'auto', opts: TypedOptions = {}): Promise<Kernels> {
  if (!isBackendName(name)) {
    throw new UserError(`unknown backend ${JSON.stringify(name)}; expected one of ${BACKEND_NAMES.join(', ')}`, { field: '--backend' });
  }
  if (name === 'typed') return new TypedKernels(opts);
  const { loadTfjsKernels } = await import('./tfjs.js');
  if (name === 'auto') {
    const gpu = await loadTfjsKernels('tfjs-node-gpu', { required: false });
    return gpu ?? new TypedKernels(opts);
  }
  return (await loadTfjsKernels(name, { required: true }))!;
}

export { allocShared, TypedKernels } from './typed.js';
export { maskKey, fillUniform, fillBernoulli } from './rng.js';
export { kthLargestAbs, topBoundary, rankBandMask, rowRanks } from './select.js';
export type { Kernels, Gram, CombineSpec, CombineResult, Mask, RngKey, DellaMaskResult } from './types.js';
