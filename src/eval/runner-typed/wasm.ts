/**
 * Loads the committed kernels (kernels.wasm, assembled from kernels.wat) and hands out float
 * buffers inside one instance's memory. Each thread has its own instance; the compiled module is
 * shared.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface KernelExports {
  memory: WebAssembly.Memory;
  fc(a: number, lda: number, w: number, ldw: number, out: number, ldo: number, M: number, K: number, N: number): void;
  swiglu(gu: number, ldgu: number, out: number, ldo: number, rows: number, ff: number): void;
  attend(q: number, kt: number, ldk: number, v: number, sc: number, out: number, p0: number, qt: number, tk: number, scale: number, hd: number): void;
}

let compiled: WebAssembly.Module | undefined;

export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'kernels.wasm')));
  return compiled;
}

/** A float buffer in the instance's memory: `off` is its byte offset, `f` a view (refreshed after growth). */
export interface Buf { off: number; n: number; f: Float32Array }

/**
 * One kernel instance with a bump allocator. Views are re-made whenever memory grows (growth
 * detaches the old ArrayBuffer), so callers read `buf.f` after allocating, never before.
 */
export class KernelArena {
  readonly k: KernelExports;
  private top = 64;
  private bufs: Buf[] = [];
  constructor(mod: WebAssembly.Module = kernelModule()) {
    this.k = new WebAssembly.Instance(mod).exports as unknown as KernelExports;
  }

  /** n floats, 16-byte aligned, zeroed, with 16 bytes of slack for the kernels' vector over-reads. */
  alloc(n: number): Buf {
    const off = this.top;
    this.top = off + ((n * 4 + 16 + 15) & ~15);
    const need = this.top - this.k.memory.buffer.byteLength;
    if (need > 0) {
      this.k.memory.grow(Math.ceil(need / 65536));
      for (const b of this.bufs) b.f = new Float32Array(this.k.memory.buffer, b.off, b.n);
    }
    const buf: Buf = { off, n, f: new Float32Array(this.k.memory.buffer, off, n) };
    buf.f.fill(0);
    this.bufs.push(buf);
    return buf;
  }

  /** Frees everything allocated after `mark()` returned this position. */
  mark(): number {
    return this.bufs.length;
  }

  release(mark: number): void {
    const kept = this.bufs.slice(0, mark);
    this.bufs = kept;
    const last = kept[kept.length - 1];
    this.top = last ? last.off + ((last.n * 4 + 16 + 15) & ~15) : 64;
  }
}
