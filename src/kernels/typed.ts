/**
 * The 'typed' backend: fused typed-array loops (loops.ts), split over worker threads for large
 * tensors. Work is split only when every array of a call lives in a SharedArrayBuffer (allocate
 * with `allocShared`), because copying into shared memory costs as much as the pass it speeds up.
 * Splits fall on reduction-block boundaries, so results are bit-identical for any thread count.
 */
import { availableParallelism } from 'node:os';
import { dellaGroupCount, dellaMaskFromDelta, dellaResult, dellaRowsPerGroup, dellaRowsRange } from './della.js';
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
import { forceGc } from './gc.js';
import { type HalfDType, narrowRange, widenPhases, widenRange, widenTail } from './convert.js';
import { type TopBoundary, bandMaskRange, histHi, histLo, pickBin, rankBandMask as rankBandOnDelta } from './select.js';
import {
  consensusMeanLoop,
  deltaVarianceLoop,
  fusionImportanceLoop,
  maskedSumSqLoop,
  nearswapLoop,
  ramCombineLoop,
  ramStatsLoop,
  thresholdMergeLoop,
  vectorGramLoop,
  vectorLerpLoop,
} from './method-loops.js';
import type {
  CombineResult,
  CombineSpec,
  ConsensusMeanSpec,
  DellaMaskResult,
  Gram,
  Kernels,
  Mask,
  RamStats,
  RngKey,
  VectorGram,
  VectorLayout,
} from './types.js';

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

function isShared(a: ArrayBufferView | null): boolean {
  return a === null || (hasSAB && a.buffer instanceof SharedArrayBuffer);
}

function checkLen(what: string, a: ArrayBufferView & { length: number }, n: number): void {
  if (a.length !== n) throw new RangeError(`${what}: length ${a.length}, expected ${n}`);
}

/**
 * Shared buffers lent to callers and taken back on `reuseBuffers()`. Why: every fresh
 * SharedArrayBuffer costs page faults on first touch, and one that worker threads have seen stays
 * alive until every worker isolate collects, which idle ones rarely do (peak RSS 5-9 GiB in
 * bench/merge-memory.ts without reuse); reusing
 * a handful of buffers avoids both without restarting the workers.
 */
class SharedArena {
  private free: Array<{ buf: SharedArrayBuffer; usedAt: number }> = [];
  private lent: SharedArrayBuffer[] = [];
  private generation = 0;
  active = false;

  /** A buffer of at least `bytes`, at most four times that so a huge one is not held for small tensors. */
  take(bytes: number): SharedArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = this.free[i].buf.byteLength;
      if (len >= bytes && len <= 4 * bytes + 4096 && (best < 0 || len < this.free[best].buf.byteLength)) best = i;
    }
    const buf = best >= 0 ? this.free.splice(best, 1)[0].buf : new SharedArrayBuffer(bytes);
    this.lent.push(buf);
    return buf;
  }

  /**
   * Everything lent goes back. A free buffer unused for KEEP_GENERATIONS reclaims (tensors) is
   * dropped, so the embedding's buffers are not held through every layer; returns the bytes dropped.
   */
  reclaim(): number {
    this.generation++;
    for (const buf of this.lent) this.free.push({ buf, usedAt: this.generation });
    this.lent = [];
    let dropped = 0;
    this.free = this.free.filter((f) => {
      const keep = this.generation - f.usedAt < KEEP_GENERATIONS;
      if (!keep) dropped += f.buf.byteLength;
      return keep;
    });
    return dropped;
  }

  clear(): void {
    this.free = [];
    this.lent = [];
  }
}

/**
 * Tensors a free buffer may go unused before it is dropped. Measured on bench/merge-memory.ts ties
 * (the rssprobe trace): 12 kept the embedding's buffers alive through the first layers and peaked at
 * 1.82 GiB; 4 drops them after the first layer (and an MLP's buffers in every layer, re-allocated
 * cheaply), 1.65 GiB at the final lm_head, in the same time.
 */
const KEEP_GENERATIONS = 4;
/** Dropping at least this much asks every isolate to collect, so the memory really goes. */
const GC_AFTER_DROPPING = 64 * 2 ** 20;

export class TypedKernels implements Kernels {
  readonly name = 'typed';
  threads: number;
  readonly parallelMin: number;
  private pool: WorkerPool | null = null;
  /**
   * Reused delta buffer for selection and della: a fresh 64 MiB buffer per call costs more in page
   * faults than the pass that fills it (measured: most of a ties merge). Lent to one call at a time.
   */
  private scratch: Float32Array | null = null;
  private scratchBusy = false;
  private workerError: unknown = null;
  private warnedWorkers = false;
  private arena = new SharedArena();

  constructor(opts: TypedOptions = {}) {
    const envThreads = Number(process.env.MERGELAB_THREADS);
    this.threads = Math.max(1, Math.floor(opts.threads ?? (envThreads > 0 ? envThreads : Math.min(availableParallelism(), 8))));
    this.parallelMin = opts.parallelMin ?? 4 * 1024 * 1024;
  }

  /**
   * Shared memory for an output, mask or bookkeeping array: lent from the arena once reuse is on
   * (then not zeroed unless asked: every loop writes all of its output), else fresh (zeroed).
   */
  private sharedBytes(bytes: number, zeroed = false): ArrayBufferLike {
    if (!hasSAB) return new ArrayBuffer(bytes);
    if (!this.arena.active) return new SharedArrayBuffer(bytes);
    const buf = this.arena.take(bytes);
    if (zeroed) new Uint8Array(buf, 0, bytes).fill(0);
    return buf;
  }

  private sharedF32(n: number): Float32Array {
    return new Float32Array(this.sharedBytes(n * 4), 0, n);
  }

  private sharedU8(n: number): Uint8Array {
    return new Uint8Array(this.sharedBytes(n), 0, n);
  }

  /** Per-block partial sums (every block writes its own entries), shared when the call is split. */
  private partials(n: number, shared: boolean): Float64Array {
    return shared ? new Float64Array(this.sharedBytes(n * 8), 0, n) : new Float64Array(n);
  }

  reuseBuffers(): void {
    this.arena.active = true;
    if (this.arena.reclaim() >= GC_AFTER_DROPPING) {
      forceGc();
      this.pool?.collectGarbage();
    }
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

  /**
   * Run range 0 on this thread (`local(start, end, 0)`) and the others on workers (`body`, or
   * body(k) for range k). A range whose worker fails (a worker that cannot start, say) is redone
   * here with `local(start, end, k)`: results do not depend on the split, so they stay bit-identical.
   * After a failure the pool is dropped and later calls run on this thread only.
   */
  private async split(
    n: number,
    body: JobBody | ((k: number) => JobBody),
    local: (start: number, end: number, k: number) => void,
    given?: Array<[number, number]>,
  ): Promise<void> {
    const ranges = given ?? this.ranges(n);
    this.pool ??= new WorkerPool(this.threads - 1);
    const failed: number[] = [];
    const remote = this.pool
      .run(typeof body === 'function' ? (k: number) => body(k + 1) : body, ranges.slice(1))
      .map((p, i) => p.catch((e: unknown) => {
        failed.push(i + 1);
        this.workerError ??= e;
      }));
    let localError: unknown = null;
    try {
      local(ranges[0][0], ranges[0][1], 0);
    } catch (e) {
      localError = e;
    }
    await Promise.all(remote);
    if (localError) throw localError;
    if (failed.length) {
      if (!this.warnedWorkers) {
        this.warnedWorkers = true;
        process.emitWarning(`mergelab: kernel worker threads failed (${String(this.workerError)}); continuing on one thread`);
      }
      const pool = this.pool;
      this.pool = null;
      this.threads = 1;
      void pool?.close();
      for (const k of failed.sort((a, b) => a - b)) local(ranges[k][0], ranges[k][1], k);
    }
  }

  async gram(models: Float32Array[], base: Float32Array | null): Promise<Gram> {
    const n = models.length;
    const N = base ? base.length : models[0]?.length ?? 0;
    for (const m of models) checkLen('gram', m, N);
    const K = gramK(n);
    const par = this.parallel(N, [...models, base]);
    const partials = this.partials(blockCount(N) * K, par);
    if (par) await this.split(N, { op: 'gram', models, base, partials }, (s, e) => gramRange(models, base, s, e, partials));
    else gramRange(models, base, 0, N, partials);
    return unpackGram(reducePartials(partials, K), n);
  }

  async delta(x: Float32Array, base: Float32Array, out?: Float32Array): Promise<Float32Array> {
    const N = base.length;
    checkLen('delta', x, N);
    const par = this.parallel(N, [x, base, out ?? null]);
    out ??= par ? this.sharedF32(N) : new Float32Array(N);
    const o = out;
    if (par) await this.split(N, { op: 'delta', x, base, out: o }, (s, e) => deltaRange(x, base, o, s, e));
    else deltaRange(x, base, o, 0, N);
    return o;
  }

  /** Run `fn` with the deltas x - base in the reused scratch buffer (a fresh one if it is lent out). */
  private async withDelta<T>(x: Float32Array, base: Float32Array, fn: (d: Float32Array) => Promise<T> | T): Promise<T> {
    const N = base.length;
    if (this.scratchBusy) return fn(await this.delta(x, base));
    this.scratchBusy = true;
    try {
      // Reallocate when too small, and also when four times too big, so a huge embedding's scratch
      // is not held through the rest of a merge.
      if (!this.scratch || this.scratch.length < N || this.scratch.length > 4 * N) {
        this.scratch = null;
        this.scratch = allocShared(N);
      }
      const d = await this.delta(x, base, this.scratch.subarray(0, N));
      return await fn(d);
    } finally {
      this.scratchBusy = false;
    }
  }

  async rankBandMask(x: Float32Array, base: Float32Array, lo: number, hi: number): Promise<Uint8Array> {
    const N = base.length;
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && 0 <= lo && lo <= hi && hi <= N)) {
      throw new RangeError(`rankBandMask: band [${lo}, ${hi}) outside [0, ${N}]`);
    }
    if (lo === hi || (lo === 0 && hi === N)) {
      // Shared when big, so the combine that reads it can still split over threads.
      const m = this.parallel(N, [x, base]) ? this.sharedU8(N) : new Uint8Array(N);
      return m.fill(lo === hi ? 0 : 1);
    }
    return this.withDelta(x, base, (d) => this.bandOnDelta(d, lo, hi));
  }

  private async bandOnDelta(d: Float32Array, lo: number, hi: number): Promise<Uint8Array> {
    const N = d.length;
    if (!this.parallel(N, [d])) return rankBandOnDelta(d, lo, hi);
    const ranges = this.ranges(N);
    const inner = await this.boundaries(d, N - lo, ranges);
    const outer = await this.boundaries(d, N - hi, ranges);
    const mask = this.sharedU8(N);
    await this.split(
      N,
      (k) => ({ op: 'bandMask', data: d, inner: inner[k], outer: outer[k], mask }),
      (s, e, k) => bandMaskRange(d, s, e, inner[k], outer[k], mask),
      ranges,
    );
    return mask;
  }

  /**
   * The boundary of the m largest |d| with the tie budget split per range: range r keeps the ties
   * left after the ranges before it, so the parallel mask keeps the same (lowest-index) ties.
   */
  private async boundaries(d: Float32Array, m: number, ranges: Array<[number, number]>): Promise<TopBoundary[]> {
    const P = ranges.length;
    if (m === 0) return ranges.map(() => ({ bits: 0xffffffff, ties: 0 }));
    const hiH = new Uint32Array(this.sharedBytes(4 * 32768 * P, true), 0, 32768 * P);
    await this.split(d.length, (k) => ({ op: 'histHi', data: d, hist: hiH, off: k * 32768 }), (s, e, k) => histHi(d, s, e, hiH, k * 32768), ranges);
    const hiSum = new Uint32Array(32768);
    for (let k = 0; k < P; k++) for (let b = 0; b < 32768; b++) hiSum[b] += hiH[k * 32768 + b];
    const a = pickBin(hiSum, m, 0);
    const loH = new Uint32Array(this.sharedBytes(4 * 65536 * P, true), 0, 65536 * P);
    await this.split(d.length, (k) => ({ op: 'histLo', data: d, hiBin: a.bin, hist: loH, off: k * 65536 }), (s, e, k) => histLo(d, s, e, a.bin, loH, k * 65536), ranges);
    const loSum = new Uint32Array(65536);
    for (let k = 0; k < P; k++) for (let b = 0; b < 65536; b++) loSum[b] += loH[k * 65536 + b];
    const b = pickBin(loSum, m, a.above);
    const bits = ((a.bin << 16) | b.bin) >>> 0;
    let ties = m - b.above;
    return ranges.map((_, k) => {
      const eq = loH[k * 65536 + b.bin];
      const here = Math.min(ties, eq);
      ties -= here;
      return { bits, ties: here };
    });
  }

  async bernoulliMask(key: RngKey, p: number, n: number): Promise<Uint8Array> {
    const par = this.parallel(n, []);
    const out = par ? this.sharedU8(n) : new Uint8Array(n);
    const partials = this.partials(blockCount(n), par);
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
    return this.withDelta(x, base, (d) => this.dellaOnDelta(d, rowLen, rho, eps, key, inverseProbability));
  }

  private async dellaOnDelta(d: Float32Array, rowLen: number, rho: number, eps: number, key: RngKey, inverseProbability: boolean): Promise<DellaMaskResult> {
    const N = d.length;
    if (!this.parallel(N, [d]) || N % rowLen !== 0) return dellaMaskFromDelta(d, rowLen, rho, eps, key, inverseProbability);
    // Split on whole groups of rows, so each group's partial sums are the same for any split.
    const rows = N / rowLen;
    const G = dellaRowsPerGroup(rowLen);
    const groups = dellaGroupCount(N, rowLen);
    const parts = Math.min(this.threads, groups);
    const ranges: Array<[number, number]> = [];
    for (let p = 0; p < parts; p++) {
      ranges.push([Math.floor((p * groups) / parts) * G, Math.min(Math.floor(((p + 1) * groups) / parts) * G, rows)]);
    }
    const mask = inverseProbability ? this.sharedF32(N) : this.sharedU8(N);
    const partials = this.partials(2 * groups, true);
    await this.split(
      N,
      { op: 'della', d, rowLen, rho, eps, key, inverse: inverseProbability, mask, partials },
      (s, e) => dellaRowsRange(d, rowLen, rho, eps, key, inverseProbability, s, e, mask, partials),
      ranges,
    );
    return dellaResult(mask, partials);
  }

  async maskedL1(x: Float32Array, base: Float32Array, mask: Mask): Promise<{ full: number; kept: number; count: number }> {
    const N = base.length;
    checkLen('maskedL1', x, N);
    if (mask) checkLen('maskedL1 mask', mask, N);
    const par = this.parallel(N, [x, base, mask]);
    const partials = this.partials(blockCount(N) * 3, par);
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
    const out = par ? this.sharedF32(N) : new Float32Array(N);
    const K = combineK(n, gram);
    const partials = this.partials(blockCount(N) * K, par);
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
    const out = par ? this.sharedF32(N) : new Float32Array(N);
    if (par) await this.split(N, { op: 'weightedSum', arrays, coeffs, out }, (s, e) => weightedSumRange(arrays, coeffs, out, s, e));
    else weightedSumRange(arrays, coeffs, out, 0, N);
    return out;
  }

  // The newer methods' ops run on this thread (method-loops.ts); outputs come from the arena like the others'.

  async vectorGram(a: Float32Array, b: Float32Array, base: Float32Array | null, layout: VectorLayout): Promise<VectorGram> {
    checkLen('vectorGram', b, a.length);
    if (base) checkLen('vectorGram base', base, a.length);
    return vectorGramLoop(a, b, base, layout);
  }

  async vectorLerp(a: Float32Array, b: Float32Array, base: Float32Array | null, layout: VectorLayout, c0: Float64Array, c1: Float64Array): Promise<Float32Array> {
    checkLen('vectorLerp', b, a.length);
    if (base) checkLen('vectorLerp base', base, a.length);
    const out = this.sharedF32(a.length);
    vectorLerpLoop(a, b, base, layout, c0, c1, out);
    return out;
  }

  async nearswap(base: Float32Array, x: Float32Array, t: number): Promise<Float32Array> {
    checkLen('nearswap', x, base.length);
    const out = this.sharedF32(base.length);
    nearswapLoop(base, x, t, out);
    return out;
  }

  async deltaVariance(models: Float32Array[], base: Float32Array): Promise<Float32Array> {
    for (const m of models) checkLen('deltaVariance', m, base.length);
    const out = this.sharedF32(base.length);
    deltaVarianceLoop(models, base, out);
    return out;
  }

  async maskedSumSq(models: Float32Array[], base: Float32Array, mask: Uint8Array | null): Promise<number[]> {
    for (const m of models) checkLen('maskedSumSq', m, base.length);
    if (mask) checkLen('maskedSumSq mask', mask, base.length);
    return maskedSumSqLoop(models, base, mask);
  }

  async consensusMean(spec: ConsensusMeanSpec): Promise<Float32Array> {
    const N = spec.base.length;
    for (const m of spec.models) checkLen('consensusMean', m, N);
    if (spec.mask) checkLen('consensusMean mask', spec.mask, N);
    if (spec.coeffs.length !== spec.models.length) throw new RangeError('consensusMean: one coefficient per model');
    const out = this.sharedF32(N);
    consensusMeanLoop(spec, out);
    return out;
  }

  async ramStats(models: Float32Array[], base: Float32Array, epsilon: number): Promise<RamStats> {
    for (const m of models) checkLen('ramStats', m, base.length);
    return ramStatsLoop(models, base, epsilon);
  }

  async ramCombine(models: Float32Array[], base: Float32Array, epsilon: number, uniqueScale: number[]): Promise<Float32Array> {
    for (const m of models) checkLen('ramCombine', m, base.length);
    const out = this.sharedF32(base.length);
    ramCombineLoop(models, base, epsilon, uniqueScale, out);
    return out;
  }

  async fusionImportance(x: Float32Array, base: Float32Array, rowLen: number): Promise<Float32Array> {
    checkLen('fusionImportance', x, base.length);
    const out = this.sharedF32(base.length);
    fusionImportanceLoop(x, base, rowLen, out);
    return out;
  }

  async thresholdMerge(x: Float32Array, base: Float32Array, score: Float32Array, threshold: number): Promise<{ out: Float32Array; kept: number }> {
    checkLen('thresholdMerge', x, base.length);
    checkLen('thresholdMerge score', score, base.length);
    const out = this.sharedF32(base.length);
    const kept = thresholdMergeLoop(x, base, score, threshold, out);
    return { out, kept };
  }

  /** Equal contiguous ranges of [lo, hi), one per thread (element-wise work: no block alignment needed). */
  private spans(lo: number, hi: number): Array<[number, number]> {
    const parts = Math.min(this.threads, hi - lo);
    return Array.from({ length: parts }, (_, p) => [lo + Math.floor((p * (hi - lo)) / parts), lo + Math.floor(((p + 1) * (hi - lo)) / parts)] as [number, number]);
  }

  async widen16(dtype: HalfDType, buf: Float32Array): Promise<void> {
    const n = buf.length;
    let tail = n;
    if (this.parallel(n, [buf])) {
      // Phases down to 256K elements: a phase costs one message round trip, the tail runs on one thread.
      const plan = widenPhases(n, Math.min(this.parallelMin, 1 << 18));
      for (const [lo, hi] of plan.phases) {
        await this.split(n, { op: 'widen16', dtype, buf, n }, (s, e) => widenRange(dtype, buf, n, s, e), this.spans(lo, hi));
      }
      tail = plan.tail;
    }
    widenTail(dtype, buf, n, tail);
  }

  async narrow16(dtype: HalfDType, src: Float32Array, dst: Uint16Array): Promise<void> {
    const n = src.length;
    checkLen('narrow16', dst, n);
    if (this.parallel(n, [src, dst])) await this.split(n, { op: 'narrow16', dtype, src, dst }, (s, e) => narrowRange(dtype, src, dst, s, e), this.spans(0, n));
    else narrowRange(dtype, src, dst, 0, n);
  }

  async dispose(): Promise<void> {
    this.scratch = null;
    this.arena.clear();
    const p = this.pool;
    this.pool = null;
    if (p) await p.close();
  }
}
