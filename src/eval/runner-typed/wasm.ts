/**
 * Loads the kernels (kernels.wat, assembled into kernelsBinary.ts) and hands out buffers inside one
 * instance's memory. Each thread has its own instance; the compiled module is shared.
 */
import { KERNELS_WASM_BASE64 } from './kernelsBinary.js';

export interface KernelExports {
  memory: WebAssembly.Memory;
  fc(a: number, lda: number, w: number, out: number, ldo: number, M: number, K: number, N: number, pk: number): void;
  swiglu(gu: number, ldgu: number, out: number, ldo: number, rows: number, ff: number): void;
  rmsnorm(x: number, ldx: number, y: number, ldy: number, rows: number, w: number, d: number, eps: number): void;
  add(x: number, o: number, ldo: number, rows: number, d: number): void;
  attend(q0: number, q1: number, kt: number, ldk: number, v: number, sc: number, out0: number, out1: number, p0: number, qt: number, tk: number, scale: number, hd: number): void;
  attention(qkv: number, ldq: number, tab: number, M: number, layer: number, H: number, KVH: number, hd: number, cos: number, sin: number, sc: number, out: number, ldo: number, scale: number): void;
}

let compiled: WebAssembly.Module | undefined;

export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
  return compiled;
}

/** A buffer in the instance's memory: `off` its byte offset, `n` its length in 4-byte words, `f`/`i` views (refreshed after growth). */
export interface Buf { off: number; n: number; f: Float32Array; i: Int32Array }

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

  /** n words, 16-byte aligned, zeroed, with 16 bytes of slack for the kernels' vector over-reads. */
  alloc(n: number): Buf {
    const off = this.top;
    this.top = off + ((n * 4 + 16 + 15) & ~15);
    const need = this.top - this.k.memory.buffer.byteLength;
    if (need > 0) {
      this.k.memory.grow(Math.ceil(need / 65536));
      for (const b of this.bufs) (b.f = new Float32Array(this.k.memory.buffer, b.off, b.n)), (b.i = new Int32Array(this.k.memory.buffer, b.off, b.n));
    }
    const buf: Buf = { off, n, f: new Float32Array(this.k.memory.buffer, off, n), i: new Int32Array(this.k.memory.buffer, off, n) };
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
