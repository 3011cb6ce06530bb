import { describe, expect, it } from 'vitest';
import {
  bf16ToF32, dtypeByteSize, f16ToF32, f32BitsToF16, f32ToBf16, f32ToF16, fromF32, toF32,
} from '../../src/checkpoint/dtype.js';

function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}
function toBf16Bits(u: number): number {
  // Build the f32 from its bits in memory: a NaN that passes through a JS number may lose its payload.
  return f32ToBf16(new Float32Array(new Uint32Array([u]).buffer))[0];
}

describe('dtype sizes', () => {
  it('knows the byte size of each dtype', () => {
    expect(dtypeByteSize('F64')).toBe(8);
    expect(dtypeByteSize('BF16')).toBe(2);
    expect(dtypeByteSize('BOOL')).toBe(1);
    expect(dtypeByteSize('I64')).toBe(8);
  });
});

describe('bf16', () => {
  it('bf16 -> f32 is the exact 16-bit shift for every bit pattern', () => {
    const all = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) all[i] = i;
    const f = bf16ToF32(all);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < 65536; i++) if (u[i] !== i << 16 >>> 0) throw new Error(`bf16 ${i} -> ${u[i].toString(16)}`);
    // ... and back to bf16 unchanged for every non-NaN pattern.
    const back = f32ToBf16(f);
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7fff) > 0x7f80;
      if (!isNaN && back[i] !== i) throw new Error(`round trip ${i.toString(16)} -> ${back[i].toString(16)}`);
    }
  });

  it('rounds to nearest, ties to even', () => {
    expect(toBf16Bits(0x3f808000)).toBe(0x3f80); // tie, 0x3f80 even -> stays
    expect(toBf16Bits(0x3f818000)).toBe(0x3f82); // tie, 0x3f81 odd -> up
    expect(toBf16Bits(0x3f808001)).toBe(0x3f81); // just above the tie -> up
    expect(toBf16Bits(0x3f807fff)).toBe(0x3f80); // just below -> down
    expect(toBf16Bits(0xbf818000)).toBe(0xbf82); // negative tie, odd -> away from zero
    expect(toBf16Bits(0x7f7fffff)).toBe(0x7f80); // largest f32 rounds to +Inf
    expect(toBf16Bits(0x00008000)).toBe(0x0000); // subnormal tie to even zero
  });

  it('keeps NaN as a quiet NaN and infinities as infinities', () => {
    for (const nan of [0x7fc00000, 0x7f800001, 0xff800001, 0x7f800100, 0x7fffffff]) {
      const b = toBf16Bits(nan);
      expect((b & 0x7fff) > 0x7f80, `0x${nan.toString(16)} -> 0x${b.toString(16)}`).toBe(true);
      expect(b & 0x40).toBe(0x40);
      expect(b & 0x8000).toBe((nan >>> 16) & 0x8000);
    }
    expect(toBf16Bits(0x7f800000)).toBe(0x7f80);
    expect(toBf16Bits(0xff800000)).toBe(0xff80);
  });
});

describe('f16', () => {
  it('f16 -> f32 decodes normals, subnormals, zero, inf and NaN', () => {
    const h = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x7e00, 0x3555]);
    const f = f16ToF32(h);
    expect(f[0]).toBe(1);
    expect(f[1]).toBe(-2);
    expect(f[2]).toBe(2 ** -24);
    expect(f[3]).toBe(1023 * 2 ** -24);
    expect(f[4]).toBe(2 ** -14);
    expect(f[5]).toBe(65504);
    expect(f[6]).toBe(Infinity);
    expect(f[7]).toBe(-Infinity);
    expect(Object.is(f[8], -0)).toBe(true);
    expect(Number.isNaN(f[9])).toBe(true);
    expect(f[10]).toBe(0.333251953125);
  });

  it('round-trips every non-NaN f16 bit pattern through f32', () => {
    const all = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) all[i] = i;
    const back = f32ToF16(f16ToF32(all));
    for (let i = 0; i < 65536; i++) {
      if ((i & 0x7fff) > 0x7c00) {
        if ((back[i] & 0x7fff) <= 0x7c00) throw new Error(`NaN ${i.toString(16)} lost`);
      } else if (back[i] !== i) throw new Error(`${i.toString(16)} -> ${back[i].toString(16)}`);
    }
  });

  it('rounds to nearest even, with subnormals and overflow', () => {
    const h = (x: number) => f32BitsToF16(f32Bits(x));
    expect(h(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10 -> even (1)
    expect(h(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, odd lower -> up
    expect(h(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above tie -> up
    expect(h(65504)).toBe(0x7bff);
    expect(h(65519)).toBe(0x7bff); // below midpoint 65520
    expect(h(65520)).toBe(0x7c00); // midpoint, 0x7bff odd -> Inf
    expect(h(1e6)).toBe(0x7c00);
    expect(h(-1e6)).toBe(0xfc00);
    expect(h(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(h(2 ** -25)).toBe(0x0000); // tie with zero -> even zero
    expect(h(2 ** -25 * 1.0001)).toBe(0x0001);
    expect(h(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 -> 2 (even)
    expect(h(5 * 2 ** -25)).toBe(0x0002); // tie between 2 and 3 -> 2
    expect(h(1023.5 * 2 ** -24)).toBe(0x0400); // rounds up into the smallest normal
    expect(h(-(2 ** -24))).toBe(0x8001);
    expect(h(1e-10)).toBe(0x0000);
    expect(h(-0)).toBe(0x8000);
    expect(h(Infinity)).toBe(0x7c00);
    const nan = h(NaN);
    expect((nan & 0x7fff) > 0x7c00).toBe(true);
  });

  it('agrees with a slow reference on random values', () => {
    // Reference: nearest representable f16 by decoding both candidates around the value.
    const table = f16ToF32(Uint16Array.from({ length: 0x7c01 }, (_, i) => i));
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let k = 0; k < 20000; k++) {
      const x = Math.fround((rnd() * 2 - 1) * 2 ** (Math.floor(rnd() * 44) - 28));
      const got = f32BitsToF16(f32Bits(x));
      const ax = Math.abs(x);
      let lo = 0, hi = 0x7c00;
      while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (table[mid] <= ax) lo = mid; else hi = mid; }
      const dl = ax - table[lo], dh = table[hi] - ax;
      let want = dl < dh ? lo : dh < dl ? hi : (lo & 1 ? hi : lo);
      if (hi === 0x7c00 && ax >= 65520) want = 0x7c00;
      if (x < 0 || Object.is(x, -0)) want |= 0x8000;
      if (got !== want) throw new Error(`${x}: got ${got.toString(16)} want ${want.toString(16)}`);
    }
  });
});

describe('toF32 / fromF32', () => {
  it('round-trips through every float dtype, including unaligned byte offsets', () => {
    const data = new Float32Array([0, 1, -2.5, 3.140625, 65504, -0.0001220703125]);
    for (const dt of ['F32', 'F16', 'BF16', 'F64'] as const) {
      const bytes = fromF32(dt, data);
      const unaligned = new Uint8Array(bytes.byteLength + 1).subarray(1);
      unaligned.set(bytes);
      expect(Array.from(toF32(dt, unaligned)), dt).toEqual(Array.from(toF32(dt, bytes)));
      const back = toF32(dt, bytes);
      if (dt !== 'BF16') expect(Array.from(back), dt).toEqual(Array.from(data));
    }
    expect(Array.from(toF32('BF16', fromF32('BF16', data)))).toEqual([0, 1, -2.5, 3.140625, 65536, -0.0001220703125]);
  });

  it('refuses non-float dtypes', () => {
    expect(() => toF32('I64', new Uint8Array(8))).toThrow(/I64/);
  });
});
