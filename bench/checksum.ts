/**
 * Which hash checks cached checkpoints: every candidate's hashing speed on bytes in memory, and
 * the cost it adds to reading a checkpoint-sized file (sequential 4 MiB reads, the file fresh in
 * the page cache, so the read is as fast as it gets and the hash's share is at its largest).
 * Rounds are interleaved and each figure is the best of its rounds; the ratios are against the
 * plain read measured in the same rounds.
 *   npx tsx bench/checksum.ts [--mb 512] [--rounds 5]
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBLAKE3, createCRC32, createXXHash128, createXXHash3, createXXHash64 } from 'hash-wasm';
import xxhash from 'xxhash-wasm';
import { CHECKSUM_ALGORITHM, newHasher } from '../src/util/checksum.js';
import { numArg as arg } from './args.js';

const MB = 2 ** 20;
const CHUNK = 4 * MB;
const totalMb = arg('mb', 512);
const rounds = arg('rounds', 5);

interface Incremental {
  update(b: Uint8Array): void;
  digest(): string;
}
type Candidate = { name: string; make: () => Incremental | Promise<Incremental> };

const xx = await xxhash();
const wasm = { x64: await createXXHash64(), x3: await createXXHash3(), x128: await createXXHash128(), crc: await createCRC32(), b3: await createBLAKE3() };
const fromHashWasm = (h: (typeof wasm)[keyof typeof wasm]): Incremental => {
  h.init();
  return { update: (b) => void h.update(b), digest: () => h.digest('hex') };
};
const node = (alg: string): Candidate => ({
  name: `node:crypto ${alg}`,
  make: () => {
    const h = createHash(alg);
    return { update: (b) => void h.update(b), digest: () => h.digest('hex') };
  },
});
const candidates: Candidate[] = [
  node('sha256'),
  node('sha1'),
  node('md5'),
  {
    name: 'xxhash-wasm xxh64',
    make: () => {
      const h = xx.create64();
      return { update: (b) => void h.update(b), digest: () => h.digest().toString(16) };
    },
  },
  { name: 'hash-wasm xxhash64', make: () => fromHashWasm(wasm.x64) },
  { name: 'hash-wasm xxhash3 (64)', make: () => fromHashWasm(wasm.x3) },
  { name: 'hash-wasm xxhash128', make: () => fromHashWasm(wasm.x128) },
  { name: 'hash-wasm crc32', make: () => fromHashWasm(wasm.crc) },
  { name: 'hash-wasm blake3', make: () => fromHashWasm(wasm.b3) },
];
// The one src/util/checksum.ts uses, as the product calls it (one instance per file).
candidates.push({ name: `src/util/checksum.ts (${CHECKSUM_ALGORITHM})`, make: newHasher });

async function seconds(fn: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'mergelab-bench-checksum-'));
try {
  // Float-like bytes (what checkpoints hold), not zeros: some hashes have shortcuts for runs.
  const mem = new Uint8Array(Math.min(totalMb, 256) * MB);
  const f = new Float32Array(mem.buffer);
  for (let i = 0; i < f.length; i++) f[i] = Math.sin(i * 0.37) * 0.02;
  const file = path.join(root, 'weights.bin');
  const fh0 = await fs.open(file, 'w');
  for (let done = 0; done < totalMb * MB; done += mem.byteLength) await fh0.write(mem, 0, Math.min(mem.byteLength, totalMb * MB - done));
  await fh0.close();

  const readAll = async (onChunk: ((b: Uint8Array) => void) | null): Promise<void> => {
    const fh = await fs.open(file, 'r');
    const buf = new Uint8Array(CHUNK);
    try {
      for (let pos = 0; ; ) {
        const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
        if (bytesRead === 0) break;
        onChunk?.(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    } finally {
      await fh.close();
    }
  };

  const best = { read: Infinity, mem: new Map<string, number>(), readHash: new Map<string, number>() };
  await readAll(null); // into the page cache
  for (let r = 0; r < rounds; r++) {
    best.read = Math.min(best.read, await seconds(() => readAll(null)));
    for (const c of candidates) {
      const m = await seconds(async () => {
        const h = await c.make();
        for (let o = 0; o < mem.byteLength; o += CHUNK) h.update(mem.subarray(o, o + CHUNK));
        h.digest();
      });
      best.mem.set(c.name, Math.min(best.mem.get(c.name) ?? Infinity, m));
      const rh = await seconds(async () => {
        const h = await c.make();
        await readAll((b) => h.update(b));
        h.digest();
      });
      best.readHash.set(c.name, Math.min(best.readHash.get(c.name) ?? Infinity, rh));
    }
  }

  const readMbs = totalMb / best.read;
  console.log(`checksum candidates: ${(mem.byteLength / MB).toFixed(0)} MiB in memory, ${totalMb} MiB file read in ${CHUNK / MB} MiB chunks (page cache), best of ${rounds} interleaved rounds; ${os.cpus().length} CPUs`);
  console.log(`  plain read: ${readMbs.toFixed(0)} MB/s`);
  console.log(`  ${'hash'.padEnd(34)} ${'in memory'.padStart(12)} ${'read+hash'.padStart(12)} ${'read+hash / read'.padStart(18)}`);
  for (const c of candidates) {
    const m = mem.byteLength / MB / best.mem.get(c.name)!;
    const rh = best.readHash.get(c.name)!;
    console.log(`  ${c.name.padEnd(34)} ${`${m.toFixed(0)} MB/s`.padStart(12)} ${`${(totalMb / rh).toFixed(0)} MB/s`.padStart(12)} ${`${(rh / best.read).toFixed(2)}x`.padStart(18)}`);
  }
} finally {
  await fs.rm(root, { recursive: true, force: true });
}
