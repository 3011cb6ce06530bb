import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_FILE, checkCheckpoint, readManifest } from '../../src/checkpoint/manifest.js';
import { CacheLayout } from '../../src/sweep/cache.js';
import { runTask } from '../../src/sweep/tasks.js';
import { checksumOf } from '../../src/util/checksum.js';
import { decodeChecked, encodeChecked, readChecked, writeChecked } from '../../src/util/checked.js';
import { tmpDir, writeTinyLlama } from '../merge/tiny-llama.js';

let root: string;
beforeAll(async () => {
  root = await tmpDir('mergelab-manifest-');
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function flip(file: string, at: number): Promise<void> {
  const b = await fs.readFile(file);
  b[at] ^= 0x10;
  await fs.writeFile(file, b);
}

describe('the writer records what it wrote', () => {
  it('lists every file with its size and checksums, a shard as header + data, each equal to a hash of the bytes on disk', async () => {
    const dir = path.join(root, 'sharded');
    await writeTinyLlama(dir, { seed: 4, shardSize: 600 });
    const m = await readManifest(dir);
    if (!m.ok) throw new Error(m.problem);
    const onDisk = (await fs.readdir(dir)).filter((f) => f !== MANIFEST_FILE).sort();
    expect(Object.keys(m.manifest.files).sort()).toEqual(onDisk);
    const shards = onDisk.filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(1);
    for (const [name, sum] of Object.entries(m.manifest.files)) {
      const bytes = await fs.readFile(path.join(dir, name));
      expect(sum.bytes).toBe(bytes.length);
      expect(sum.segments.length).toBe(name.endsWith('.safetensors') ? 2 : 1);
      let at = 0;
      for (const [len, digest] of sum.segments) {
        expect(digest).toBe(await checksumOf(bytes.subarray(at, at + len)));
        at += len;
      }
      if (name.endsWith('.safetensors')) expect(sum.segments[0][0]).toBe(8 + Number(bytes.readBigUInt64LE(0)));
    }
    expect(await checkCheckpoint(dir, { full: true })).toBeNull();
  });

  it('finds a flipped data byte, a flipped header byte, a truncated or missing file and a damaged manifest, naming the file', async () => {
    const make = async (name: string) => {
      const dir = path.join(root, name);
      await writeTinyLlama(dir, { seed: 5 });
      return { dir, file: path.join(dir, 'model.safetensors') };
    };
    const data = await make('flip-data');
    const size = (await fs.stat(data.file)).size;
    await flip(data.file, size - 10);
    // Sizes still match: only the full check reads the bytes.
    expect(await checkCheckpoint(data.dir, { full: false })).toBeNull();
    expect(await checkCheckpoint(data.dir, { full: true })).toMatch(new RegExp(`^${data.file}: bytes \\d+-${size} do not match their checksum \\(xxh64 [0-9a-f]{16}, recorded [0-9a-f]{16}\\)$`));

    const header = await make('flip-header');
    await flip(header.file, 20);
    expect(await checkCheckpoint(header.dir, { full: true })).toMatch(new RegExp(`^${header.file}: bytes 0-\\d+ do not match`));

    const short = await make('truncated');
    await fs.truncate(short.file, 100);
    expect(await checkCheckpoint(short.dir, { full: false })).toMatch(new RegExp(`^${short.file} is 100 bytes, the manifest says \\d+$`));

    const gone = await make('missing');
    await fs.rm(path.join(gone.dir, 'config.json'));
    expect(await checkCheckpoint(gone.dir, { full: false })).toBe(`${path.join(gone.dir, 'config.json')} is missing (ENOENT)`);

    const bad = await make('bad-manifest');
    await fs.writeFile(path.join(bad.dir, MANIFEST_FILE), '{"format":');
    expect(await checkCheckpoint(bad.dir, { full: false })).toMatch(/mergelab_manifest\.json is not JSON/);
    await fs.rm(path.join(bad.dir, MANIFEST_FILE));
    expect(await checkCheckpoint(bad.dir, { full: false })).toMatch(/mergelab_manifest\.json is missing/);
  });
});

describe('JSON entries with their checksum', () => {
  it('read back whole, and tell damage from absence and from an entry without a checksum', async () => {
    const file = path.join(root, 'entry.json');
    const value = { key: 'k', result: { metrics: { math: { em: 0.675 } } }, seconds: 1.5 };
    await writeChecked(file, value);
    expect(JSON.parse(await fs.readFile(file, 'utf8')).value).toEqual(value); // still JSON
    expect(await readChecked(file)).toEqual({ ok: true, value });
    const good = await encodeChecked(value);
    const changed = Buffer.from(good.toString('utf8').replace('0.675', '0.875'));
    expect(await decodeChecked(changed)).toMatchObject({ ok: false, kind: 'damaged', problem: expect.stringMatching(/recorded checksum/) });
    expect(await decodeChecked(good.subarray(0, good.length - 5))).toMatchObject({ ok: false, kind: 'damaged', problem: expect.stringMatching(/bytes long, expected/) });
    expect(await decodeChecked(Buffer.alloc(0))).toMatchObject({ ok: false, kind: 'damaged', problem: 'the file is empty' });
    expect(await decodeChecked(Buffer.from(JSON.stringify(value)))).toMatchObject({ ok: false, kind: 'unchecked' });
    expect(await decodeChecked(Buffer.from('{"key": "k", "res'))).toMatchObject({ ok: false, kind: 'damaged' });
    expect(await readChecked(path.join(root, 'absent.json'))).toEqual({ ok: false, kind: 'missing' });
  });
});

describe('a sweep task reading a cached stage', () => {
  it('checks it first: a damaged folder fails the task naming it and is removed so the next run merges it again', async () => {
    const layout = new CacheLayout(path.join(root, 'cache'));
    const key = 'aaaabbbbccccddddeeeeffff';
    await writeTinyLlama(layout.stageDir(key), { seed: 6 });
    await flip(path.join(layout.stageDir(key), 'model.safetensors'), (await fs.stat(path.join(layout.stageDir(key), 'model.safetensors'))).size - 3);
    const base = path.join(root, 'pd-base');
    await writeTinyLlama(base, { seed: 1 });
    const task = { type: 'pointdiag' as const, key: 'pd', cacheRoot: layout.root, finalDir: layout.stageDir(key), base: { name: 'base', dir: base }, parents: [{ name: 'math', dir: base }] };
    await expect(runTask(task, { kernels: () => Promise.reject(new Error('unused')), gpus: [] })).rejects.toThrow(
      new RegExp(`^damaged cache entry ${layout.stageDir(key)}: .*model\\.safetensors: bytes \\d+-\\d+ do not match their checksum.*; it was removed, run again to recompute it$`),
    );
    await expect(fs.access(layout.stageDir(key))).rejects.toThrow();
    await expect(fs.access(layout.pointDiagFile('pd'))).rejects.toThrow();
  });
});
