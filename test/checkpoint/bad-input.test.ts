import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/checkpoint/reader.js';
import { CheckpointWriter } from '../../src/checkpoint/writer.js';
import { rawSafetensors, tmpDir, userErrorOf } from './helpers.js';

/** A folder holding one model.safetensors with the given bytes. */
async function single(bytes: Uint8Array): Promise<{ dir: string; file: string }> {
  const dir = await tmpDir('bad-');
  const file = path.join(dir, 'model.safetensors');
  await fs.writeFile(file, bytes);
  return { dir, file };
}

const goodHeader = {
  __metadata__: { format: 'pt' },
  a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
  b: { dtype: 'BF16', shape: [4], data_offsets: [16, 24] },
};

describe('safetensors header validation', () => {
  it('accepts a well-formed file and keeps __metadata__', async () => {
    const { dir } = await single(rawSafetensors(goodHeader, new Uint8Array(24)));
    const ck = await openCheckpoint(dir);
    expect(ck.tensorNames()).toEqual(['a', 'b']);
    await ck.close();
  });

  it('rejects a truncated file, naming the file and the tensor that runs past the end', async () => {
    const full = rawSafetensors(goodHeader, new Uint8Array(24));
    const { dir, file } = await single(full.subarray(0, full.length - 5));
    const msg = await userErrorOf(openCheckpoint(dir));
    expect(msg).toContain(file);
    expect(msg).toContain('"b"');
    expect(msg).toMatch(/truncated/);
  });

  it('rejects a file cut inside the header and a file shorter than 8 bytes', async () => {
    const full = rawSafetensors(goodHeader, new Uint8Array(24));
    const a = await single(full.subarray(0, 20));
    const m1 = await userErrorOf(openCheckpoint(a.dir));
    expect(m1).toContain(a.file);
    expect(m1).toMatch(/header length/);
    const b = await single(full.subarray(0, 5));
    const m2 = await userErrorOf(openCheckpoint(b.dir));
    expect(m2).toContain(b.file);
    expect(m2).toMatch(/at least 8/);
  });

  it('rejects overlapping data_offsets, naming both tensors', async () => {
    const h = { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } };
    const { dir, file } = await single(rawSafetensors(h, new Uint8Array(16)));
    const msg = await userErrorOf(openCheckpoint(dir));
    expect(msg).toContain(file);
    expect(msg).toMatch(/overlap/);
    expect(msg).toContain('"a"');
    expect(msg).toContain('"b"');
  });

  it('rejects a tensor nested inside a longer one even when a shorter tensor lies between', async () => {
    const h = {
      big: { dtype: 'U8', shape: [100], data_offsets: [0, 100] },
      small: { dtype: 'U8', shape: [10], data_offsets: [10, 20] },
    };
    const { dir } = await single(rawSafetensors(h, new Uint8Array(100)));
    expect(await userErrorOf(openCheckpoint(dir))).toMatch(/"small".*overlap.*"big"/);
  });

  it('rejects offsets running past the end of the file', async () => {
    const h = { a: { dtype: 'F32', shape: [1000], data_offsets: [0, 4000] } };
    const { dir, file } = await single(rawSafetensors(h, new Uint8Array(16)));
    const msg = await userErrorOf(openCheckpoint(dir));
    expect(msg).toContain(file);
    expect(msg).toContain('"a"');
    expect(msg).toContain('4000');
  });

  it('rejects an oversized header length without allocating it', async () => {
    const { dir, file } = await single(rawSafetensors(goodHeader, new Uint8Array(24), { headerLen: 2n ** 60n }));
    const msg = await userErrorOf(openCheckpoint(dir));
    expect(msg).toContain(file);
    expect(msg).toMatch(/header length.*at most 100000000/);
    const b = await single(rawSafetensors(goodHeader, new Uint8Array(24), { headerLen: 5000n }));
    expect(await userErrorOf(openCheckpoint(b.dir))).toMatch(/header length field says 5000 bytes/);
  });

  it('rejects an unknown dtype, listing the known ones', async () => {
    const h = { w: { dtype: 'Q4_K', shape: [2], data_offsets: [0, 2] } };
    const { dir, file } = await single(rawSafetensors(h, new Uint8Array(2)));
    const msg = await userErrorOf(openCheckpoint(dir));
    expect(msg).toContain(file);
    expect(msg).toContain('"w"');
    expect(msg).toContain('Q4_K');
    expect(msg).toContain('BF16');
  });

  it('rejects a shape that does not match the byte range', async () => {
    const h = { w: { dtype: 'BF16', shape: [3, 3], data_offsets: [0, 16] } };
    const { dir, file } = await single(rawSafetensors(h, new Uint8Array(16)));
    const msg = await userErrorOf(openCheckpoint(dir));
    expect(msg).toContain(file);
    expect(msg).toMatch(/"w".*16 bytes.*BF16.*\[3, 3\] needs 18 bytes/);
  });

  it('rejects malformed JSON, a non-object header and bad entries', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['{"a": {"dtype": "F32",', /not valid UTF-8 JSON/],
      ['[1,2]', /expected an object/],
      [{ a: 5 }, /"a".*expected \{dtype, shape, data_offsets\}/],
      [{ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, /"a".*shape/],
      [{ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, /"a".*data_offsets/],
      [{ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, /"a".*data_offsets/],
      [{ __metadata__: 'x' }, /__metadata__/],
    ];
    for (const [h, re] of cases) {
      const { dir, file } = await single(rawSafetensors(h, new Uint8Array(4)));
      const msg = await userErrorOf(openCheckpoint(dir));
      expect(msg).toContain(file);
      expect(msg).toMatch(re);
    }
  });
});

describe('folder and index problems', () => {
  async function sharded(): Promise<string> {
    const root = await tmpDir('bad-');
    const dir = path.join(root, 'm');
    const w = await CheckpointWriter.create(dir, { dtype: 'F32', shardSize: 16 });
    await w.addF32('x', [4], new Float32Array(4));
    await w.addF32('y', [4], new Float32Array(4));
    await w.addF32('z', [4], new Float32Array(4));
    await w.finish({});
    return dir;
  }

  it('names a missing shard and the index that lists it', async () => {
    const dir = await sharded();
    await fs.rm(path.join(dir, 'model-00002-of-00003.safetensors'));
    const msg = await userErrorOf(openCheckpoint(dir));
    expect(msg).toContain(path.join(dir, 'model.safetensors.index.json'));
    expect(msg).toContain('model-00002-of-00003.safetensors');
    expect(msg).toMatch(/does not exist/);
  });

  it('names a tensor that the index puts in a shard lacking it', async () => {
    const dir = await sharded();
    const idxFile = path.join(dir, 'model.safetensors.index.json');
    const idx = JSON.parse(await fs.readFile(idxFile, 'utf8'));
    idx.weight_map.ghost = 'model-00001-of-00003.safetensors';
    await fs.writeFile(idxFile, JSON.stringify(idx));
    const msg = await userErrorOf(openCheckpoint(dir));
    expect(msg).toContain(idxFile);
    expect(msg).toContain('"ghost"');
    expect(msg).toContain('model-00001-of-00003.safetensors');
  });

  it('rejects an index without weight_map, with bad JSON, or escaping the folder', async () => {
    const dir = await sharded();
    const idxFile = path.join(dir, 'model.safetensors.index.json');
    await fs.writeFile(idxFile, '{"metadata": {}}');
    expect(await userErrorOf(openCheckpoint(dir))).toMatch(/weight_map/);
    await fs.writeFile(idxFile, '{"weight_map": ');
    expect(await userErrorOf(openCheckpoint(dir))).toMatch(/not valid JSON/);
    await fs.writeFile(idxFile, '{"weight_map": {"x": "../elsewhere.safetensors"}}');
    expect(await userErrorOf(openCheckpoint(dir))).toMatch(/weight_map\["x"\]/);
  });

  it('reports a missing folder, a folder without weights, .bin weights and bad config.json', async () => {
    const root = await tmpDir('bad-');
    expect(await userErrorOf(openCheckpoint(path.join(root, 'nope')))).toMatch(/does not exist/);
    expect(await userErrorOf(openCheckpoint(root))).toMatch(/no model.safetensors or model.safetensors.index.json/);
    await fs.writeFile(path.join(root, 'pytorch_model.bin'), 'x');
    expect(await userErrorOf(openCheckpoint(root))).toMatch(/convert them to safetensors/);
    const { dir } = await single(rawSafetensors(goodHeader, new Uint8Array(24)));
    await fs.writeFile(path.join(dir, 'config.json'), '{oops');
    expect(await userErrorOf(openCheckpoint(dir))).toMatch(/config\.json.*not valid JSON/);
  });

  it('notices a file truncated after it was opened', async () => {
    const { dir, file } = await single(rawSafetensors(goodHeader, new Uint8Array(24)));
    const ck = await openCheckpoint(dir);
    await fs.truncate(file, (await fs.stat(file)).size - 4);
    const msg = await userErrorOf(ck.readF32('b'));
    expect(msg).toContain(file);
    expect(msg).toContain('"b"');
    await ck.close();
  });
});
