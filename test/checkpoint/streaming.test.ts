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
