import { promises as fs } from 'node:fs';
import { createXXHash64, type IHasher } from 'hash-wasm';

/**
 * The checksum of cache entries and checkpoint files: XXH64 (hash-wasm). It guards against damage
 * (truncation, flipped bits, a half-copied file), not tampering, and it runs over every cached
 * checkpoint before it is read, so speed decides. bench/checksum.ts (512 MiB, best of 5, this
 * 2-core machine under load): hash-wasm xxh64 3.3-3.7 GB/s streamed through a 4 MiB read buffer,
 * xxhash-wasm's xxh64 2.4, xxh3 2.7, crc32 0.4, sha256 0.6, sha1 0.65, md5 0.15, blake3 0.2; a
 * plain read from the page cache ran at 9.8 GB/s, so checking a cached checkpoint costs about 3x
 * reading it from memory, and less than a read from most disks.
 */

export const CHECKSUM_ALGORITHM = 'xxh64';

export interface Hasher {
  update(bytes: Uint8Array): void;
  /** 16 lower-case hex digits (the canonical big-endian form `xxh64sum` prints). */
  digest(): string;
}

let shared: Promise<IHasher> | null = null;

/** An independent streaming hasher (one per file: writes to several files interleave across awaits). */
export async function newHasher(): Promise<Hasher> {
  const h = await createXXHash64();
  h.init();
  return {
    update: (b) => void h.update(b),
    digest: () => h.digest('hex'),
  };
}

/** Checksum of bytes in memory (one synchronous pass on a shared instance, so calls cannot interleave). */
export async function checksumOf(bytes: Uint8Array | string): Promise<string> {
  shared ??= createXXHash64();
  const h = await shared;
  h.init();
  h.update(bytes);
  return h.digest('hex');
}

/**
 * Checksums of consecutive byte ranges of a file in one sequential read (4 MiB at a time), or
 * null when the file cannot be opened. The file ending early leaves the remaining ranges short:
 * their checksums then differ from the recorded ones.
 */
export async function checksumFileRanges(file: string, lengths: number[]): Promise<string[] | null> {
  let fh;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return null;
  }
  try {
    const out: string[] = [];
    const buf = new Uint8Array(4 << 20);
    let pos = 0;
    for (const len of lengths) {
      const h = await newHasher();
      const end = pos + len;
      while (pos < end) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, end - pos), pos);
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      pos = end;
      out.push(h.digest());
    }
    return out;
  } finally {
    await fh.close();
  }
}
