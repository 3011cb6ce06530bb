import { endianness } from 'node:os';

/**
 * Safetensors element types. The common ones come first; the rest are passed through
 * unchanged (read as raw bytes, written back as raw bytes).
 */
export const DTYPES = [
  'F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL',
  'U64', 'U32', 'U16', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'C64',
] as const;
export type DType = (typeof DTYPES)[number];

/** Dtypes that `toF32` can decode. */
export type FloatDType = 'F64' | 'F32' | 'F16' | 'BF16';
/** Dtypes a checkpoint can be written in after merging. */
export type OutDType = 'F32' | 'F16' | 'BF16';

const BYTE_SIZE: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
  U64: 8, U32: 4, U16: 2, F8_E4M3: 1, F8_E5M2: 1, F8_E8M0: 1, C64: 8,
};

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(BYTE_SIZE, s);
}

export function isFloatDType(d: DType): d is FloatDType {
  return d === 'F64' || d === 'F32' || d === 'F16' || d === 'BF16';
}

export function dtypeByteSize(d: DType): number {
  const n = BYTE_SIZE[d];
  if (n === undefined) throw new Error(`unknown dtype ${String(d)}`);
  return n;
}

/** The `torch_dtype` string Hugging Face configs use for an output dtype. */
export function torchDtypeName(d: OutDType): 'float32' | 'float16' | 'bfloat16' {
  return d === 'F32' ? 'float32' : d === 'F16' ? 'float16' : 'bfloat16';
}

/**
 * An uninitialized ArrayBuffer of exactly `byteLength` bytes: skipping the zero fill of
 * `new ArrayBuffer` matters when every byte is overwritten at once and tensors are hundreds of
 * megabytes. Only for buffers the caller fills completely.
 */
export function uninitBuffer(byteLength: number): ArrayBuffer {
  // allocUnsafeSlow never hands out a slice of the shared pool: the ArrayBuffer is ours alone,
  // starts at offset 0 and is malloc-aligned, so any typed view of it is aligned.
  const b = Buffer.allocUnsafeSlow(byteLength);
  if (b.byteOffset !== 0 || b.buffer.byteLength !== byteLength) throw new Error('allocUnsafeSlow returned a pooled slice');
  return b.buffer as ArrayBuffer;
}

// Safetensors data is little-endian; every typed-array view below assumes the host is too.
if (endianness() !== 'LE') throw new Error('mergelab checkpoint I/O needs a little-endian host');

/**
 * bf16 -> f32 is exact: a bf16 is the top half of an f32. `dst` may share memory with `src`
 * as long as dst's bytes start at or before src's (element i is read before any later write
 * can reach it), which lets a reader decode in place.
 */
export function bf16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  const n = src.length;
  const out = dst ?? new Float32Array(uninitBuffer(n * 4), 0, n);
  if (out.length < n) throw new Error(`bf16ToF32: dst has ${out.length} elements, need ${n}`);
  const u = new Int32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) u[i] = src[i] << 16;
  return out;
}

/** f32 -> bf16, round to nearest even; NaN stays NaN (quieted), infinities stay infinite. */
export function f32ToBf16(src: Float32Array, dst?: Uint16Array): Uint16Array {
  const n = src.length;
  const out = dst ?? new Uint16Array(uninitBuffer(n * 2), 0, n);
  if (out.length < n) throw new Error(`f32ToBf16: dst has ${out.length} elements, need ${n}`);
  // Signed view: uint32 values above 2^31 would leave V8's small-integer fast path.
  const u = new Int32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = u[i];
    if ((x & 0x7fffffff) > 0x7f800000) {
      // Truncating a NaN could clear every mantissa bit and turn it into Inf; force the quiet bit.
      out[i] = (x >>> 16) | 0x0040;
    } else {
      // Stays within int32 for every non-NaN input (negative x only moves towards zero's side
      // of -2^31), and >>> 16 reads the sum's two's-complement bits.
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

let F16_TABLE: Float32Array | null = null;

function f16BitsToF32Scalar(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** A 65,536-entry table (256 KiB) makes f16 decoding one load per element. */
export function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Float32Array(65536);
  const tu = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0x1f && m !== 0) {
      // Keep the payload and sign of NaNs instead of collapsing them to one canonical NaN.
      tu[h] = ((h & 0x8000) << 16) | 0x7f800000 | 0x00400000 | (m << 13);
    } else {
      t[h] = f16BitsToF32Scalar(h);
    }
  }
  F16_TABLE = t;
  return t;
}

/** f16 -> f32 (exact). Same in-place rule as `bf16ToF32`. */
export function f16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  const n = src.length;
  const out = dst ?? new Float32Array(uninitBuffer(n * 4), 0, n);
  if (out.length < n) throw new Error(`f16ToF32: dst has ${out.length} elements, need ${n}`);
  const t = f16Table();
  const tu = new Uint32Array(t.buffer);
  // Copy bit patterns, not float values, so NaN payloads survive.
  const u = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) u[i] = tu[src[i]];
  return out;
}

/** One f32 bit pattern (as int32 or uint32) -> f16 bits, round to nearest even, with subnormals and infinities. */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const ax = x & 0x7fffffff;
  if (ax >= 0x7f800000) {
    if (ax === 0x7f800000) return sign | 0x7c00;
    return sign | 0x7e00 | ((ax >>> 13) & 0x3ff);
  }
  // 65520 (0x477ff000) is the midpoint between 65504 (odd mantissa) and 65536: ties go up to Inf.
  if (ax >= 0x477ff000) return sign | 0x7c00;
  if (ax >= 0x38800000) {
    // Normal half: rebias the exponent (127 -> 15), keep 10 mantissa bits, round the 13 dropped.
    let h = (ax - 0x38000000) >>> 13;
    const rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
    return sign | h;
  }
  // 2^-25 is exactly half the smallest subnormal: the tie rounds to even, i.e. zero.
  if (ax <= 0x33000000) return sign;
  // Subnormal half: value / 2^-24 rounded to an integer; a carry into 0x400 is the smallest normal.
  const e = ax >>> 23;
  const m = (ax & 0x7fffff) | 0x800000;
  const shift = 126 - e;
  let r = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (r & 1) !== 0)) r++;
  return sign | r;
}

/** f32 -> f16, round to nearest even; overflow goes to Inf, tiny values to subnormals or zero. */
export function f32ToF16(src: Float32Array, dst?: Uint16Array): Uint16Array {
  const n = src.length;
  const out = dst ?? new Uint16Array(uninitBuffer(n * 2), 0, n);
  if (out.length < n) throw new Error(`f32ToF16: dst has ${out.length} elements, need ${n}`);
  const u = new Int32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) out[i] = f32BitsToF16(u[i]);
  return out;
}

/** A view of `bytes` as `T`, copying into a fresh aligned buffer only when the offset forbids a view. */
function alignedView<T>(bytes: Uint8Array, size: number, make: (b: ArrayBufferLike, off: number, n: number) => T): T {
  if (bytes.byteLength % size !== 0) throw new Error(`byte length ${bytes.byteLength} is not a multiple of the element size ${size}`);
  const n = bytes.byteLength / size;
  if (bytes.byteOffset % size === 0) return make(bytes.buffer, bytes.byteOffset, n);
  const copy = new Uint8Array(uninitBuffer(bytes.byteLength), 0, bytes.byteLength);
  copy.set(bytes);
  return make(copy.buffer, 0, n);
}

/**
 * Decode little-endian tensor bytes to f32. For F32 input the result may be a view sharing
 * memory with `bytes` (no copy over gigabytes); copy it first if `bytes` will be reused.
 */
export function toF32(dtype: DType, bytes: Uint8Array): Float32Array {
  switch (dtype) {
    case 'F32':
      return alignedView(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
    case 'BF16':
      return bf16ToF32(alignedView(bytes, 2, (b, o, n) => new Uint16Array(b, o, n)));
    case 'F16':
      return f16ToF32(alignedView(bytes, 2, (b, o, n) => new Uint16Array(b, o, n)));
    case 'F64': {
      const src = alignedView(bytes, 8, (b, o, n) => new Float64Array(b, o, n));
      const out = new Float32Array(uninitBuffer(src.length * 4), 0, src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i];
      return out;
    }
    default:
      throw new Error(`cannot convert dtype ${dtype} to float32 (only F64, F32, F16, BF16)`);
  }
}

/** Encode f32 data as little-endian bytes of `dtype`. For F32 the result is a view of `data`. */
export function fromF32(dtype: FloatDType, data: Float32Array): Uint8Array {
  switch (dtype) {
    case 'F32':
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    case 'BF16': {
      const h = f32ToBf16(data);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case 'F16': {
      const h = f32ToF16(data);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case 'F64': {
      const d = new Float64Array(uninitBuffer(data.length * 8), 0, data.length);
      for (let i = 0; i < data.length; i++) d[i] = data[i];
      return new Uint8Array(d.buffer, 0, d.byteLength);
    }
    default:
      throw new Error(`cannot encode float32 as dtype ${String(dtype)}`);
  }
}
