import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../src/checkpoint/reader.js';
import { CheckpointWriter } from '../../src/checkpoint/writer.js';
import { f32ToBf16, bf16ToF32 } from '../../src/checkpoint/dtype.js';
import { readSafetensorsHeader } from '../../src/checkpoint/safetensors.js';
import { tmpDir } from './helpers.js';

function seq(n: number, scale: number, offset = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37 + offset) * scale;
  return a;
}

const open: Checkpoint[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function list(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).sort();
}

describe('CheckpointWriter + openCheckpoint', () => {
  it('writes several shards with an index and reads every tensor back', async () => {
    const root = await tmpDir();
    const out = path.join(root, 'merged');
    const base = path.join(root, 'base');
    await fs.mkdir(base);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'tokenizer.model', 'special_tokens_map.json', 'generation_config.json', 'vocab.json', 'merges.txt']) {
      await fs.writeFile(path.join(base, f), `contents of ${f}`);
    }
    await fs.writeFile(path.join(base, 'model.safetensors'), 'not copied');
    await fs.writeFile(path.join(base, 'README.md'), 'not copied');

    const shardSize = 3000;
    const w = await CheckpointWriter.create(out, { dtype: 'BF16', shardSize, metadata: { mergelab_seed: '7', format: 'ignored' } });
    const tensors: Array<[string, number[], Float32Array]> = [
      ['model.embed_tokens.weight', [16, 32], seq(512, 2)], // 1024 bytes
      ['model.layers.0.self_attn.q_proj.weight', [32, 32], seq(1024, 0.1, 1)], // 2048 bytes
      ['model.layers.0.mlp.up_proj.weight', [40, 32], seq(1280, 0.05, 2)], // 2560 bytes
      ['model.norm.weight', [32], seq(32, 1, 3)], // 64
      ['lm_head.weight', [64, 32], seq(2048, 0.3, 4)], // 4096 bytes > shardSize: own shard
      ['model.layers.0.input_layernorm.weight', [32], seq(32, 1, 5)],
    ];
    for (const [name, shape, data] of tensors) await w.addF32(name, shape, data);
    const ids = new BigInt64Array([1n, -2n, 3n, 9007199254740993n]);
    await w.addRaw('position_ids', 'I64', [4], new Uint8Array(ids.buffer));
    const config = { architectures: ['LlamaForCausalLM'], hidden_size: 32, torch_dtype: 'float32' };
    const recipe = 'merge_method: linear\nmodels: []\n';
    const res = await w.finish({ config, tokenizerFrom: base, recipe, extraFiles: { 'mergelab.json': '{"seed":1}' } });

    const files = await list(out);
    const shards = files.filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThanOrEqual(4);
    expect(shards[0]).toBe(`model-00001-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    expect(files).toContain('model.safetensors.index.json');
    expect(files).toEqual(expect.arrayContaining(['config.json', 'mergekit_config.yml', 'tokenizer.json', 'tokenizer_config.json',
      'tokenizer.model', 'special_tokens_map.json', 'generation_config.json', 'vocab.json', 'merges.txt', 'mergelab.json']));
    expect(files).not.toContain('README.md');
    expect([...res.files].sort()).toEqual(files);
    // No temp folder left next to the output.
    expect(await list(root)).toEqual(['base', 'merged']);

    const index = JSON.parse(await fs.readFile(path.join(out, 'model.safetensors.index.json'), 'utf8'));
    const expectedTotal = tensors.reduce((s, [, , d]) => s + d.length * 2, 0) + 32;
    expect(index.metadata.total_size).toBe(expectedTotal);
    expect(res.totalSize).toBe(expectedTotal);
    expect(Object.keys(index.weight_map).sort()).toEqual([...tensors.map((t) => t[0]), 'position_ids'].sort());

    // Shard-size limit on tensor bytes; the oversized tensor sits alone.
    for (const s of shards) {
      const fh = await fs.open(path.join(out, s), 'r');
      const h = await readSafetensorsHeader(fh, s);
      await fh.close();
      const bytes = h.entries.reduce((a, e) => a + e.byteLength, 0);
      if (h.entries.some((e) => e.name === 'lm_head.weight')) expect(h.entries.length).toBe(1);
      else expect(bytes).toBeLessThanOrEqual(shardSize);
      expect(h.metadata).toEqual({ mergelab_seed: '7', format: 'pt' });
      // Contiguous data, ending exactly at the end of the file (what the reference loader demands).
      let pos = h.dataStart;
      for (const e of h.entries) { expect(e.byteOffset).toBe(pos); pos += e.byteLength; }
      expect(pos).toBe(h.fileSize);
    }

    const cfg = JSON.parse(await fs.readFile(path.join(out, 'config.json'), 'utf8'));
    expect(cfg).toEqual({ ...config, torch_dtype: 'bfloat16' });
    expect(await fs.readFile(path.join(out, 'mergekit_config.yml'), 'utf8')).toBe(recipe);
    expect(await fs.readFile(path.join(out, 'tokenizer.model'), 'utf8')).toBe('contents of tokenizer.model');

    const ck = await openCheckpoint(out);
    open.push(ck);
    expect(ck.config).toEqual(cfg);
    expect(ck.metadata).toEqual({ mergelab_seed: '7', format: 'pt' });
    expect(ck.tensorNames().sort()).toEqual([...tensors.map((t) => t[0]), 'position_ids'].sort());
    for (const [name, shape, data] of tensors) {
      const info = ck.info(name);
      expect(info.dtype).toBe('BF16');
      expect(info.shape).toEqual(shape);
      expect(info.numel).toBe(data.length);
      expect(info.byteLength).toBe(data.length * 2);
      const got = await ck.readF32(name);
      expect(Array.from(got)).toEqual(Array.from(bf16ToF32(f32ToBf16(data))));
      const raw = await ck.readRaw(name);
      expect(Array.from(new Uint16Array(raw.bytes.buffer, raw.bytes.byteOffset, data.length))).toEqual(Array.from(f32ToBf16(data)));
    }
    const pid = await ck.readRaw('position_ids');
    expect(pid.dtype).toBe('I64');
    expect(Array.from(new BigInt64Array(pid.bytes.buffer, pid.bytes.byteOffset, 4))).toEqual(Array.from(ids));
    expect(ck.has('nope')).toBe(false);
    expect(() => ck.info('nope')).toThrow(/nope/);
    await expect(ck.readF32('position_ids')).rejects.toThrow(/I64/);
  });

  it('writes a single model.safetensors without an index when everything fits, in F32 and F16', async () => {
    for (const dtype of ['F32', 'F16'] as const) {
      const root = await tmpDir();
      const out = path.join(root, 'out');
      const w = await CheckpointWriter.create(out, { dtype });
      const a = seq(100, 3);
      const b = seq(7, 1000, 1); // odd length: unaligned offsets for whatever follows
      await w.addF32('a', [10, 10], a);
      await w.addF32('b', [7], b);
      await w.addF32('c', [3, 2], seq(6, 1, 2));
      const res = await w.finish({ config: { x: 1, dtype: 'bfloat16' } });
      expect(res.files.sort()).toEqual(['config.json', 'mergelab_manifest.json', 'model.safetensors']);
      const ck = await openCheckpoint(out);
      open.push(ck);
      expect(ck.tensorNames()).toEqual(['a', 'b', 'c']);
      const got = await ck.readF32('c');
      const want = seq(6, 1, 2);
      if (dtype === 'F32') expect(Array.from(got)).toEqual(Array.from(want));
      else for (let i = 0; i < 6; i++) expect(got[i]).toBeCloseTo(want[i], 3);
      const name = dtype === 'F32' ? 'float32' : 'float16';
      expect(ck.config).toEqual({ x: 1, dtype: name, torch_dtype: name });
    }
  });

  it('handles a header bigger than the reserved area (many tensors in one shard)', async () => {
    const root = await tmpDir();
    const out = path.join(root, 'out');
    const w = await CheckpointWriter.create(out, { dtype: 'F32' });
    const n = 1500; // ~100 bytes of header each: well past the initial 64 KiB reservation
    for (let i = 0; i < n; i++) await w.addF32(`model.layers.${i}.some_rather_long_parameter_name.weight`, [3], new Float32Array([i, -i, i / 2]));
    await w.finish({});
    const ck = await openCheckpoint(out);
    open.push(ck);
    expect(ck.tensorNames().length).toBe(n);
    expect(Array.from(await ck.readF32('model.layers.1234.some_rather_long_parameter_name.weight'))).toEqual([1234, -1234, 617]);
    expect(Array.from(await ck.readF32('model.layers.0.some_rather_long_parameter_name.weight'))).toEqual([0, -0, 0]);
  });

  it('abort leaves no output folder and no temp folder behind', async () => {
    const root = await tmpDir();
    const out = path.join(root, 'out');
    const w = await CheckpointWriter.create(out, { dtype: 'BF16', shardSize: 100 });
    await w.addF32('a', [64], seq(64, 1));
    await w.addF32('b', [64], seq(64, 1));
    await w.abort();
    expect(await list(root)).toEqual([]);
    await expect(w.addF32('c', [1], new Float32Array(1))).rejects.toThrow(/aborted/);
  });

  it('a failing finish leaves no output folder and keeps an existing one intact', async () => {
    const root = await tmpDir();
    const out = path.join(root, 'out');
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, 'old.txt'), 'old');
    const w = await CheckpointWriter.create(out, { dtype: 'BF16' });
    await w.addF32('a', [4], seq(4, 1));
    await expect(w.finish({ tokenizerFrom: path.join(root, 'does-not-exist') })).rejects.toThrow(/does-not-exist/);
    expect(await list(root)).toEqual(['out']);
    expect(await list(out)).toEqual(['old.txt']);
  });

  it('replaces an existing output folder on finish', async () => {
    const root = await tmpDir();
    const out = path.join(root, 'out');
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, 'stale.txt'), 'stale');
    const w = await CheckpointWriter.create(out, { dtype: 'F32' });
    await w.addF32('a', [2], new Float32Array([1, 2]));
    await w.finish({});
    expect(await list(out)).toEqual(['mergelab_manifest.json', 'model.safetensors']);
  });
});

describe('leftovers of a killed writer', () => {
  it('are removed by the next writer to the same folder when their process is gone', async () => {
    const root = await tmpDir();
    const out = path.join(root, 'out');
    // A pid far above Linux's pid_max: no such process.
    const dead = path.join(root, '.out.tmp-99999999-deadbeef');
    const alive = path.join(root, `.out.tmp-${process.ppid}-cafebabe`);
    const other = path.join(root, '.other.tmp-99999999-deadbeef');
    for (const d of [dead, alive, other]) await fs.mkdir(d);
    const w = await CheckpointWriter.create(out, { dtype: 'F32' });
    await w.addF32('a', [1], new Float32Array([1]));
    await w.finish({});
    const names = await fs.readdir(root);
    expect(names.sort()).toEqual(['.other.tmp-99999999-deadbeef', `.out.tmp-${process.ppid}-cafebabe`, 'out'].sort());
  });
});

describe('writer call discipline', () => {
  it('serializes adds that are not awaited one by one', async () => {
    const root = await tmpDir();
    const out = path.join(root, 'out');
    const w = await CheckpointWriter.create(out, { dtype: 'F16', shardSize: 20 });
    const adds = Array.from({ length: 10 }, (_, i) => w.addF32(`t${i}`, [4], new Float32Array([i, i + 1, i + 2, i + 3])));
    const fin = w.finish({});
    await Promise.all(adds);
    const res = await fin;
    expect(res.files.filter((f) => f.endsWith('.safetensors')).length).toBe(5); // 8 bytes each: 2 fit a 20-byte shard
    const ck = await openCheckpoint(out);
    open.push(ck);
    expect(ck.tensorNames()).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}`));
    for (let i = 0; i < 10; i++) expect(Array.from(await ck.readF32(`t${i}`))).toEqual([i, i + 1, i + 2, i + 3]);
  });

  it('rejects duplicate names and wrong sizes, refuses use after finish, and still aborts cleanly after a failure', async () => {
    const root = await tmpDir();
    const out = path.join(root, 'out');
    const w = await CheckpointWriter.create(out, { dtype: 'BF16' });
    await w.addF32('a', [2], new Float32Array(2));
    await expect(w.addF32('a', [2], new Float32Array(2))).rejects.toThrow(/already written/);
    await expect(w.addF32('b', [3], new Float32Array(2))).rejects.toThrow(/3 elements/);
    await expect(w.addRaw('c', 'I64', [2], new Uint8Array(8))).rejects.toThrow(/needs 16 bytes/);
    await w.abort();
    expect(await list(root)).toEqual([]);

    const w2 = await CheckpointWriter.create(out, { dtype: 'BF16' });
    await w2.addF32('a', [2], new Float32Array(2));
    await w2.finish({});
    await expect(w2.finish({})).rejects.toThrow(/already finished/);
    await expect(w2.addF32('b', [1], new Float32Array(1))).rejects.toThrow(/already finished/);
    await w2.abort(); // no-op after finish: the output stays
    expect(await list(out)).toEqual(['mergelab_manifest.json', 'model.safetensors']);
  });

  it('rejects a bad shard size or dtype as a user error', async () => {
    const root = await tmpDir();
    await expect(CheckpointWriter.create(path.join(root, 'o'), { dtype: 'BF16', shardSize: 0 })).rejects.toThrow(/shard size/);
    await expect(CheckpointWriter.create(path.join(root, 'o'), { dtype: 'I8' as 'BF16' })).rejects.toThrow(/F32, F16 or BF16/);
    expect(await list(root)).toEqual([]);
  });
});

describe('odd tensor names', () => {
  it('round-trips names that are special to JavaScript objects or need JSON escaping', async () => {
    const root = await tmpDir();
    const out = path.join(root, 'out');
    const w = await CheckpointWriter.create(out, { dtype: 'F32' });
    const names = ['__proto__', 'constructor', 'a "quoted"\\name', 'ünïcødé.weight'];
    for (const [i, n] of names.entries()) await w.addF32(n, [1], new Float32Array([i]));
    await w.finish({});
    const ck = await openCheckpoint(out);
    open.push(ck);
    expect(ck.tensorNames()).toEqual(names);
    for (const [i, n] of names.entries()) expect(Array.from(await ck.readF32(n))).toEqual([i]);
    expect(ck.has('toString')).toBe(false);
  });
});
