/**
 * The 'typed' backend: fused typed-array loops (loops.ts), split over worker threads for large
 * tensors. Work is split only when every array of a call lives in a SharedArrayBuffer (allocate
 * with `allocShared`), because copying into shared memory costs as much as the pass it speeds up.
 * Splits fall on reduction-block boundaries, so results are bit-identical for any thread count.
 */
import { availableParallelism } from 'node:os';
import { dellaMaskFromDelta } from './della.js';
import {
  BLOCK,
  bernoulliRange,
  blockCount,
  combineK,
  combineRange,
  deltaRange,
  gramK,
  gramRange,
  maskedL1Range,
  reducePartials,
  unpackGram,
  weightedSumRange,
} from './loops.js';
import { type JobBody, WorkerPool } from './pool.js';
import { rankBandMask as rankBandOnDelta } from './select.js';
import type { CombineResult, CombineSpec, DellaMaskResult, Gram, Kernels, Mask, RngKey } from './types.js';

export interface TypedOptions {
  /** Threads including the calling one (default: available cores, at most 8). 1 = never spawn workers. */
  threads?: number;
  /** Smallest tensor (elements) worth splitting (default 4M). */
  parallelMin?: number;
}

const hasSAB = typeof SharedArrayBuffer !== 'undefined';

/** A zeroed Float32Array in shared memory, so the typed backend can split work on it without copying. */
export function allocShared(n: number): Float32Array {
  return hasSAB ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
}

function allocSharedU8(n: number): Uint8Array {
  return hasSAB ? new Uint8Array(new SharedArrayBuffer(n)) : new Uint8Array(n);
}

function allocPartials(n: number, shared: boolean): Float64Array {
  return shared && hasSAB ? new Float64Array(new SharedArrayBuffer(n * 8)) : new Float64Array(n);
}

function isShared(a: ArrayBufferView | null): boolean {
  return a === null || (hasSAB && a.buffer instanceof SharedArrayBuffer);
}

function checkLen(what: string, a: ArrayBufferView & { length: number }, n: number): void {
  if (a.length !== n) throw new RangeError(`${what}: length ${a.length}, expected ${n}`);
}

export class TypedKernels implements Kernels {
  readonly name = 'typed';
  readonly threads: number;
  readonly parallelMin: number;
  private pool: WorkerPool | null = null;

  constructor(opts: TypedOptions = {}) {
    const envThreads = Number(process.env.MERGELAB_THREADS);
    this.threads = Math.max(1, Math.floor(opts.threads ?? (envThreads > 0 ? envThreads : Math.min(availableParallelism(), 8))));
    this.parallelMin = opts.parallelMin ?? 4 * 1024 * 1024;
  }

  private parallel(n: number, arrays: Array<ArrayBufferView | null>): boolean {
    return this.threads > 1 && n >= this.parallelMin && n > BLOCK && arrays.every(isShared);
  }

  /** Block-aligned ranges, one per thread; range 0 runs on this thread. */
  private ranges(n: number): Array<[number, number]> {
    const nb = blockCount(n);
    const parts = Math.min(this.threads, nb);
    const out: Array<[number, number]> = [];
    for (let p = 0; p < parts; p++) {
      const b0 = Math.floor((p * nb) / parts);
      const b1 = Math.floor(((p + 1) * nb) / parts);
      out.push([b0 * BLOCK, Math.min(b1 * BLOCK, n)]);
    }
    return out;
  }

  /** Run `local(start, end)` on this thread for range 0 and `body` on workers for the others. */
  private async split(n: number, body: JobBody, local: (start: number, end: number) => void): Promise<void> {
    const ranges = this.ranges(n);
    this.pool ??= new WorkerPool(this.threads - 1);
    const remote = this.pool.run(body, ranges.slice(1));
    let localError: unknown = null;
    try {
      local(ranges[0][0], ranges[0][1]);
    } catch (e) {
      localError = e;
    }
    await Promise.all(remote);
    if (localError) throw localError;
  }

  async gram(models: Float32Array[], base: Float32Array | null): Promise<Gram> {
    const n = models.length;
    const N = base ? base.length : models[0]?.length ?? 0;
    for (const m of models) checkLen('gram', m, N);
    const K = gramK(n);
    const par = this.parallel(N, [...models, base]);
    const partials = allocPartials(blockCount(N) * K, par);
    if (par) await this.split(N, { op: 'gram', models, base, partials }, (s, e) => gramRange(models, base, s, e, partials));
    else gramRange(models, base, 0, N, partials);
    return unpackGram(reducePartials(partials, K), n);
  }

  async delta(x: Float32Array, base: Float32Array): Promise<Float32Array> {
    const N = base.length;
    checkLen('delta', x, N);
    const par = this.parallel(N, [x, base]);
    const out = par ? allocShared(N) : new Float32Array(N);
    if (par) await this.split(N, { op: 'delta', x, base, out }, (s, e) => deltaRange(x, base, out, s, e));
    else deltaRange(x, base, out, 0, N);
    return out;
  }

  async rankBandMask(x: Float32Array, base: Float32Array, lo: number, hi: number): Promise<Uint8Array> {
    const d = await this.delta(x, base);
    return rankBandOnDelta(d, lo, hi);
  }

  async bernoulliMask(key: RngKey, p: number, n: number): Promise<Uint8Array> {
    const par = this.parallel(n, []);
    const out = par ? allocSharedU8(n) : new Uint8Array(n);
    const partials = allocPartials(blockCount(n), par);
    if (par) await this.split(n, { op: 'bernoulli', key, p, out, partials }, (s, e) => bernoulliRange(key, p, out, s, e, partials));
    else bernoulliRange(key, p, out, 0, n, partials);
    return out;
  }

  async dellaMask(
    x: Float32Array,
    base: Float32Array,
    rowLen: number,
    rho: number,
    eps: number,
    key: RngKey,
    inverseProbability: boolean,
  ): Promise<DellaMaskResult> {
    const d = await this.delta(x, base);
    return dellaMaskFromDelta(d, rowLen, rho, eps, key, inverseProbability);
  }

  async maskedL1(x: Float32Array, base: Float32Array, mask: Mask): Promise<{ full: number; kept: number; count: number }> {
    const N = base.length;
    checkLen('maskedL1', x, N);
    if (mask) checkLen('maskedL1 mask', mask, N);
    const par = this.parallel(N, [x, base, mask]);
    const partials = allocPartials(blockCount(N) * 3, par);
    if (par) await this.split(N, { op: 'maskedL1', x, base, mask, partials }, (s, e) => maskedL1Range(x, base, mask, s, e, partials));
    else maskedL1Range(x, base, mask, 0, N, partials);
    const [full, kept, count] = reducePartials(partials, 3);
    return { full, kept, count };
  }

  async combine(spec: CombineSpec): Promise<CombineResult> {
    const N = spec.base.length;
    const n = spec.models.length;
    spec.models.forEach((m, i) => {
      checkLen(`combine model ${i}`, m, N);
      const mask = spec.masks[i];
      if (mask) checkLen(`combine mask ${i}`, mask, N);
    });
    if (spec.masks.length !== n || spec.coeffs.length !== n || spec.weights.length !== n) {
      throw new RangeError('combine: models, masks, coeffs and weights must have the same length');
    }
    const gram = spec.gram ?? false;
    const par = this.parallel(N, [spec.base, ...spec.models, ...spec.masks]);
    const out = par ? allocShared(N) : new Float32Array(N);
    const K = combineK(n, gram);
    const partials = allocPartials(blockCount(N) * K, par);
    const args = { ...spec, gram, out };
    if (par) await this.split(N, { op: 'combine', args, partials }, (s, e) => combineRange(args, s, e, partials));
    else combineRange(args, 0, N, partials);
    const sums = reducePartials(partials, K);
    return {
      out,
      signConflicts: sums[0],
      mergedDeltaL2sq: sums[1],
      gram: gram ? unpackGram(sums.slice(2), n) : null,
    };
  }

  async weightedSum(arrays: Float32Array[], coeffs: number[]): Promise<Float32Array> {
    const N = arrays[0].length;
    for (const a of arrays) checkLen('weightedSum', a, N);
    const par = this.parallel(N, arrays);
    const out = par ? allocShared(N) : new Float32Array(N);
    if (par) await this.split(N, { op: 'weightedSum', arrays, coeffs, out }, (s, e) => weightedSumRange(arrays, coeffs, out, s, e));
    else weightedSumRange(arrays, coeffs, out, 0, N);
    return out;
  }

  async dispose(): Promise<void> {
    const p = this.pool;
    this.pool = null;
    if (p) await p.close();
  }
}
