import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findNonFinite, openCheckpoint } from '../../src/checkpoint/reader.js';
import { encodeSafetensorsHeader } from '../../src/checkpoint/safetensors.js';
import { tmpDir } from './helpers.js';

describe('reading tensor by tensor', () => {
  it('reads one small tensor of a 6 GB sparse file without loading the file', async () => {
    const dir = await tmpDir('sparse-');
    const file = path.join(dir, 'model.safetensors');
    const big = 6 * 2 ** 30; // fs.readFile refuses this; a whole-file read would show in arrayBuffers
    const header = encodeSafetensorsHeader(
      [
        { name: 'huge', dtype: 'BF16', shape: [big / 2], begin: 0, end: big },
        { name: 'small', dtype: 'BF16', shape: [4], begin: big, end: big + 8 },
      ],
      { format: 'pt' },
    );
    const fh = await fs.open(file, 'w');
    await fh.write(header, 0, header.length, 0);
    // bf16 1, -2, 0.5, 3 at the very end; everything before it is a hole costing no disk.
    const tail = new Uint16Array([0x3f80, 0xc000, 0x3f00, 0x4040]);
    await fh.write(new Uint8Array(tail.buffer), 0, 8, header.length + big);
    await fh.close();
    expect((await fs.stat(file)).size).toBe(header.length + big + 8);

    const before = process.memoryUsage().arrayBuffers;
    const ck = await openCheckpoint(dir);
    expect(ck.info('huge').numel).toBe(big / 2);
    expect(Array.from(await ck.readF32('small'))).toEqual([1, -2, 0.5, 3]);
    const grew = process.memoryUsage().arrayBuffers - before;
    expect(grew).toBeLessThan(64 * 2 ** 20);
    await ck.close();
    await fs.rm(dir, { recursive: true });
  });

  it('keeps tensors in file order across shards and within a shard by offset', async () => {
    const dir = await tmpDir('order-');
    // Header keys deliberately out of data order.
    const h = encodeSafetensorsHeader(
      [
        { name: 'z.second', dtype: 'U8', shape: [2], begin: 2, end: 4 },
        { name: 'a.first', dtype: 'U8', shape: [2], begin: 0, end: 2 },
      ],
      null,
    );
    const f = new Uint8Array(h.length + 4);
    f.set(h);
    await fs.writeFile(path.join(dir, 'model.safetensors'), f);
    const ck = await openCheckpoint(dir);
    expect(ck.tensorNames()).toEqual(['a.first', 'z.second']);
    await ck.close();
  });
});

describe('findNonFinite', () => {
  it('counts NaN and both infinities, not large finite values', () => {
    const a = new Float32Array([0, 1, NaN, -Infinity, 3.4e38, -3.4e38, Infinity, -0, 1e-45]);
    expect(findNonFinite(a)).toBe(3);
    expect(findNonFinite(new Float32Array(1000))).toBe(0);
  });
});

describe('reading into a caller buffer', () => {
  it('decodes every float dtype into a reused buffer at an offset, and raw bytes too', async () => {
    const dir = await tmpDir('into-');
    const vals = [1.5, -2, 0.25, 1024];
    const f64 = new Uint8Array(new Float64Array(vals).buffer);
    const f32 = new Uint8Array(new Float32Array(vals).buffer);
    const bf16 = new Uint8Array(new Uint16Array([0x3fc0, 0xc000, 0x3e80, 0x4480]).buffer);
    const f16 = new Uint8Array(new Uint16Array([0x3e00, 0xc000, 0x3400, 0x6400]).buffer);
    // Odd-sized leading tensor: every float tensor after it starts at an unaligned file offset.
    const parts: Array<[string, 'U8' | 'F64' | 'F32' | 'BF16' | 'F16', Uint8Array]> = [
      ['pad', 'U8', new Uint8Array([7, 8, 9])], ['d', 'F64', f64], ['s', 'F32', f32], ['b', 'BF16', bf16], ['h', 'F16', f16],
    ];
    let pos = 0;
    const tensors = parts.map(([name, dtype, bytes]) => {
      const t = { name, dtype, shape: [name === 'pad' ? 3 : 4], begin: pos, end: pos + bytes.length };
      pos += bytes.length;
      return t;
    });
    const header = encodeSafetensorsHeader(tensors, null);
    const file = new Uint8Array(header.length + pos);
    file.set(header);
    let at = header.length;
    for (const [, , bytes] of parts) { file.set(bytes, at); at += bytes.length; }
    await fs.writeFile(path.join(dir, 'model.safetensors'), file);

    const ck = await openCheckpoint(dir);
    const backing = new Float32Array(16).fill(99);
    const into = backing.subarray(3, 10); // 7 elements at byte offset 12
    for (const name of ['d', 's', 'b', 'h']) {
      into.fill(-7);
      const got = await ck.readF32(name, into);
      expect(got.buffer).toBe(backing.buffer);
      expect(got.byteOffset).toBe(12);
      expect(Array.from(got), name).toEqual(vals);
      expect(Array.from(await ck.readF32(name)), name).toEqual(vals);
    }
    expect(backing[2]).toBe(99);
    expect(backing[7]).toBe(-7); // beyond numel: untouched by the read
    await expect(ck.readF32('s', new Float32Array(3))).rejects.toThrow(/need 4/);
    const raw = await ck.readRaw('pad', new Uint8Array(10));
    expect(Array.from(raw.bytes)).toEqual([7, 8, 9]);
    await ck.close();
  });
});

describe('SharedArrayBuffer-backed tensors (worker-thread kernels use them)', () => {
  it('writes from and reads into shared memory', async () => {
    const { CheckpointWriter } = await import('../../src/checkpoint/writer.js');
    const root = await tmpDir('sab-');
    const out = path.join(root, 'out');
    const data = new Float32Array(new SharedArrayBuffer(4 * 6));
    data.set([1, -2, 3.5, 0.125, 1e-3, 7]);
    for (const dtype of ['F32', 'BF16'] as const) {
      const w = await CheckpointWriter.create(out, { dtype });
      await w.addF32('t', [2, 3], data);
      await w.finish({});
      const ck = await openCheckpoint(out);
      const into = new Float32Array(new SharedArrayBuffer(4 * 8));
      const got = await ck.readF32('t', into);
      expect(got.buffer).toBe(into.buffer);
      const want = dtype === 'F32' ? [1, -2, 3.5, 0.125, Math.fround(1e-3), 7] : [1, -2, 3.5, 0.125, 0.00099945068359375, 7];
      expect(Array.from(got)).toEqual(want);
      await ck.close();
    }
  });
});

describe('writing streams', () => {
  it('does not hold a shard in memory: buffers stay near one tensor while a 64 MB shard is written', async () => {
    const { CheckpointWriter } = await import('../../src/checkpoint/writer.js');
    const root = await tmpDir('wstream-');
    const out = path.join(root, 'out');
    const n = 2 * 2 ** 20; // 4 MiB per tensor as bf16
    const data = new Float32Array(n).fill(0.5);
    const w = await CheckpointWriter.create(out, { dtype: 'BF16' });
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    for (let t = 0; t < 16; t++) {
      data[0] = t;
      await w.addF32(`t${t}`, [n], data);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
    }
    await w.finish({});
    expect(peak).toBeLessThan(24 * 2 ** 20);
    const ck = await openCheckpoint(out);
    expect(ck.tensorNames().length).toBe(16);
    expect((await ck.readF32('t13'))[0]).toBe(13);
    await ck.close();
    await fs.rm(root, { recursive: true });
  });
});
