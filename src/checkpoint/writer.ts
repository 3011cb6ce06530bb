import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { dtypeByteSize, f32ToBf16, f32ToF16, torchDtypeName, uninitBuffer, type DType, type OutDType } from './dtype.js';
import { encodeSafetensorsHeader } from './safetensors.js';
import { INDEX_FILE, SINGLE_FILE } from './reader.js';
import { MANIFEST_FILE, makeManifest, type FileSum } from './manifest.js';
import { prepareOutDir, swapIntoPlace } from './outdir.js';
import { checksumOf, newHasher, type Hasher } from '../util/checksum.js';
import { tempSibling } from '../util/temp.js';
import { diskFull, isNoSpace } from '../util/disk.js';

export const DEFAULT_SHARD_SIZE = 5e9;

/** Files copied from the base model's folder next to the merged weights. */
export function isTokenizerFile(name: string): boolean {
  return (
    /^tokenizer.*\.(json|model)$/.test(name) ||
    /^vocab(\..+)?$/.test(name) ||
    /\.tiktoken$/.test(name) ||
    /^chat_template.*\.(jinja|json)$/.test(name) ||
    ['special_tokens_map.json', 'added_tokens.json', 'merges.txt', 'generation_config.json',
      'spiece.model', 'sentencepiece.bpe.model'].includes(name)
  );
}

export interface WriterOptions {
  /** Most tensor bytes in one shard (default 5e9, mergekit's); a larger tensor gets a shard of its own. */
  shardSize?: number;
  dtype: OutDType;
  /** Stored as each shard's `__metadata__`; `format: pt` is always set because transformers requires it. */
  metadata?: Record<string, string>;
  /**
   * What an existing `outDir` may be: 'mergelab' (default for merges: a folder this writer produced
   * earlier, or an empty one; anything else is refused before a byte is written, see outdir.ts) or
   * 'any' (the caller owns the folder, as the zoo trainer does). Either way the replacement is
   * crash-safe.
   */
  replace?: 'mergelab' | 'any';
  /** The option that named `outDir`, for messages (default '--out'). */
  outOption?: string;
  /** Bytes of tensor data the caller will add, when known: a full disk is then reported with the space needed. */
  expectedBytes?: number;
}

export interface FinishOptions {
  /** Usually the base model's config; written as config.json with `torch_dtype` set to the output dtype. */
  config?: Record<string, unknown> | null;
  /** Folder to copy the tokenizer files and generation_config.json from. */
  tokenizerFrom?: string;
  /** Tokenizer files of that folder not to copy (a tokenizer built for the merge replaces them). */
  skipTokenizerFile?: (name: string) => boolean;
  /** The recipe text, saved as mergekit_config.yml. */
  recipe?: string;
  /** More files for the output folder: name -> contents. */
  extraFiles?: Record<string, string>;
}

interface PendingTensor {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

interface OpenShard {
  tmpName: string;
  fh: FileHandle;
  /** Bytes reserved in front of the data for the header (8-byte length + padded JSON). */
  reserved: number;
  tensors: PendingTensor[];
  dataBytes: number;
  /** Hashes the tensor data as it is streamed, so the manifest's checksums cost no second read. */
  hasher: Hasher;
}

interface ClosedShard {
  tmpName: string;
  tensors: PendingTensor[];
  dataBytes: number;
  headerBytes: number;
  headerSum: string;
  dataSum: string;
}

/** Initial header reservation; a 7B Llama shard's header is ~20 KB. Overflow is handled by shifting the data. */
const INITIAL_HEADER_RESERVE = 64 * 1024;
const MOVE_CHUNK = 64 * 1024 * 1024;

/**
 * Streams a Hugging Face checkpoint to disk tensor by tensor. Each tensor's bytes go straight to
 * the current shard file behind a reserved header area, so memory never holds more than one
 * tensor; the header is written into that area when the shard closes. Everything is built in a
 * hidden sibling folder that finish() renames onto `outDir`: a failure, abort() or crash never
 * leaves a half-written `outDir`.
 */
export class CheckpointWriter {
  private shard: OpenShard | null = null;
  private readonly done: ClosedShard[] = [];
  private readonly names = new Set<string>();
  private headerReserve = INITIAL_HEADER_RESERVE;
  private state: 'open' | 'finished' | 'aborted' = 'open';
  /** Serializes operations so callers that don't await each add still get a consistent file. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly metadata: Record<string, string>;
  /** Reused conversion buffer (writes are serialized): fresh pages per tensor cost 2-3x in speed. */
  private scratch: Uint16Array | null = null;

  private constructor(
    readonly outDir: string,
    readonly tmpDir: string,
    readonly dtype: OutDType,
    readonly shardSize: number,
    metadata: Record<string, string> | undefined,
    private readonly replace: { force: boolean; what: string },
    private readonly expectedBytes: number | null,
  ) {
    this.metadata = { ...(metadata ?? {}), format: 'pt' };
  }

  static async create(outDir: string, opts: WriterOptions): Promise<CheckpointWriter> {
    const shardSize = opts.shardSize ?? DEFAULT_SHARD_SIZE;
    if (!(Number.isFinite(shardSize) && shardSize > 0)) {
      throw new UserError(`shard size ${shardSize} is invalid; expected a positive number of bytes`, { field: 'out-shard-size' });
    }
    if (!['F32', 'F16', 'BF16'].includes(opts.dtype)) {
      throw new UserError(`output dtype ${JSON.stringify(opts.dtype)} is not supported; expected F32, F16 or BF16`, { field: 'out_dtype' });
    }
    const target = path.resolve(outDir);
    const replace = { force: (opts.replace ?? 'any') === 'any', what: opts.outOption ?? '--out' };
    const tmpDir = tempSibling(target);
    try {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await prepareOutDir(target, replace);
      await fs.mkdir(tmpDir);
    } catch (e) {
      throw isNoSpace(e) ? await diskFull(target, opts.expectedBytes ?? null, e) : e;
    }
    return new CheckpointWriter(target, tmpDir, opts.dtype, shardSize, opts.metadata, replace, opts.expectedBytes ?? null);
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    // A full disk is one line naming the folder and the space needed, not a stack from deep in a write.
    const p = this.queue.then(op).catch(async (e: unknown) => {
      throw isNoSpace(e) ? await diskFull(this.outDir, this.expectedBytes === null ? null : this.expectedBytes + this.headerReserve * Math.max(1, Math.ceil(this.expectedBytes / this.shardSize)), e) : e;
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new Error(`CheckpointWriter for ${this.outDir} is already ${this.state}`);
  }

  /** Add a float tensor, converted to the writer's dtype. `data` must not change until the promise settles. */
  addF32(name: string, shape: number[], data: Float32Array): Promise<void> {
    return this.enqueue(async () => {
      const numel = this.checkTensor(name, shape);
      if (data.length !== numel) throw new Error(`tensor "${name}": shape [${shape.join(', ')}] has ${numel} elements but data has ${data.length}`);
      await this.append(name, this.dtype, shape, this.encode(data));
    });
  }

  private encode(data: Float32Array): Uint8Array {
    if (this.dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (!this.scratch || this.scratch.length < data.length) this.scratch = new Uint16Array(uninitBuffer(data.length * 2), 0, data.length);
    const h = this.scratch.subarray(0, data.length);
    if (this.dtype === 'BF16') f32ToBf16(data, h);
    else f32ToF16(data, h);
    return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
  }

  /** Add a tensor as-is (integer tensors, or floats that must not be converted). */
  addRaw(name: string, dtype: DType, shape: number[], bytes: Uint8Array): Promise<void> {
    return this.enqueue(async () => {
      const numel = this.checkTensor(name, shape);
      const need = numel * dtypeByteSize(dtype);
      if (bytes.byteLength !== need) throw new Error(`tensor "${name}": ${dtype} [${shape.join(', ')}] needs ${need} bytes, got ${bytes.byteLength}`);
      await this.append(name, dtype, shape, bytes);
    });
  }

  private checkTensor(name: string, shape: number[]): number {
    this.checkOpen();
    if (name === '' || name === '__metadata__') throw new Error(`invalid tensor name ${JSON.stringify(name)}`);
    if (this.names.has(name)) throw new Error(`tensor "${name}" was already written to ${this.outDir}`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`tensor "${name}": bad shape ${JSON.stringify(shape)}`);
    return shape.reduce((a, b) => a * b, 1);
  }

  private async append(name: string, dtype: DType, shape: number[], bytes: Uint8Array): Promise<void> {
    if (this.shard && this.shard.tensors.length > 0 && this.shard.dataBytes + bytes.byteLength > this.shardSize) {
      await this.closeShard();
    }
    if (!this.shard) {
      const tmpName = `shard-${String(this.done.length + 1).padStart(5, '0')}.partial`;
      // Read access too: an overgrown header shifts the data within the file.
      const fh = await fs.open(path.join(this.tmpDir, tmpName), 'w+');
      this.shard = { tmpName, fh, reserved: this.headerReserve, tensors: [], dataBytes: 0, hasher: await newHasher() };
    }
    const s = this.shard;
    // Hashed before the write: `bytes` may be a reused conversion buffer, valid only until this returns.
    s.hasher.update(bytes);
    let written = 0;
    while (written < bytes.byteLength) {
      const { bytesWritten } = await s.fh.write(bytes, written, Math.min(bytes.byteLength - written, 1 << 30), s.reserved + s.dataBytes + written);
      written += bytesWritten;
    }
    s.tensors.push({ name, dtype, shape: [...shape], begin: s.dataBytes, end: s.dataBytes + bytes.byteLength });
    s.dataBytes += bytes.byteLength;
    this.names.add(name);
  }

  private async closeShard(): Promise<void> {
    const s = this.shard;
    if (!s) return;
    this.shard = null;
    try {
      let header = encodeSafetensorsHeader(s.tensors, this.metadata);
      if (header.byteLength <= s.reserved) {
        // Pad the JSON with spaces to fill the reserved area exactly; the data then follows with no gap.
        header = encodeSafetensorsHeader(s.tensors, this.metadata, s.reserved - 8);
      } else {
        // Header outgrew the reservation: move the data up (from the end, so nothing is overwritten
        // before it is read), and reserve more for the next shards.
        await shiftUp(s.fh, s.reserved, s.dataBytes, header.byteLength - s.reserved);
        this.headerReserve = Math.ceil((header.byteLength * 1.5) / 8) * 8;
      }
      // The header area is a hole until now: on a filling disk this write may land in part.
      for (let done = 0; done < header.byteLength; ) done += (await s.fh.write(header, done, header.byteLength - done, done)).bytesWritten;
      this.done.push({ tmpName: s.tmpName, tensors: s.tensors, dataBytes: s.dataBytes, headerBytes: header.byteLength, headerSum: await checksumOf(header), dataSum: s.hasher.digest() });
    } finally {
      await s.fh.close();
    }
  }

  /**
   * Close the last shard, name the shards `model-0000k-of-0000N.safetensors` (or
   * `model.safetensors` when there is one), write the index when there are several, config,
   * tokenizer files and recipe, then rename the folder onto `outDir` (replacing an old one).
   */
  finish(opts: FinishOptions = {}): Promise<{ files: string[]; totalSize: number }> {
    return this.enqueue(async () => {
      this.checkOpen();
      try {
        await this.closeShard();
        if (this.done.length === 0) throw new Error(`CheckpointWriter for ${this.outDir}: no tensors were added`);
        const n = this.done.length;
        const files: string[] = [];
        const sums: Record<string, FileSum> = {};
        const put = async (name: string, bytes: Uint8Array): Promise<void> => {
          await fs.writeFile(path.join(this.tmpDir, name), bytes);
          sums[name] = { bytes: bytes.byteLength, segments: [[bytes.byteLength, await checksumOf(bytes)]] };
          if (!files.includes(name)) files.push(name);
        };
        const weightMap: Record<string, string> = {};
        let totalSize = 0;
        for (let k = 0; k < n; k++) {
          const shard = this.done[k];
          const final = n === 1 ? SINGLE_FILE : `model-${String(k + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
          await fs.rename(path.join(this.tmpDir, shard.tmpName), path.join(this.tmpDir, final));
          files.push(final);
          sums[final] = { bytes: shard.headerBytes + shard.dataBytes, segments: [[shard.headerBytes, shard.headerSum], [shard.dataBytes, shard.dataSum]] };
          for (const t of shard.tensors) weightMap[t.name] = final;
          totalSize += shard.dataBytes;
        }
        if (n > 1) await put(INDEX_FILE, Buffer.from(JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n'));
        if (opts.tokenizerFrom !== undefined) {
          for (const [name, bytes] of await readTokenizer(opts.tokenizerFrom, opts.skipTokenizerFile)) await put(name, bytes);
        }
        const extra: Record<string, string> = { ...(opts.extraFiles ?? {}) };
        if (opts.config) {
          const cfg: Record<string, unknown> = { ...opts.config, torch_dtype: torchDtypeName(this.dtype) };
          // Newer transformers write `dtype` instead of `torch_dtype`; a stale one would contradict the weights.
          if (typeof cfg.dtype === 'string') cfg.dtype = torchDtypeName(this.dtype);
          extra['config.json'] = JSON.stringify(cfg, null, 2) + '\n';
        }
        if (opts.recipe !== undefined) extra['mergekit_config.yml'] = opts.recipe;
        for (const [name, text] of Object.entries(extra)) {
          if (name === '' || name.includes('/') || name.includes('\\') || name === '.' || name === '..' || name === MANIFEST_FILE) {
            throw new Error(`extra file name ${JSON.stringify(name)} must be a plain file name other than ${MANIFEST_FILE}`);
          }
          await put(name, Buffer.from(text, 'utf8'));
        }
        // Last: its presence says the folder is mergelab's and whole.
        await fs.writeFile(path.join(this.tmpDir, MANIFEST_FILE), JSON.stringify(makeManifest(sums), null, 1) + '\n');
        files.push(MANIFEST_FILE);
        await swapIntoPlace(this.tmpDir, this.outDir, this.replace);
        this.state = 'finished';
        this.scratch = null;
        return { files, totalSize };
      } catch (e) {
        await this.cleanup();
        throw e;
      }
    });
  }

  /** Discard everything written so far; `outDir` is left untouched. */
  abort(): Promise<void> {
    // Queued after pending operations, whether they succeeded or not, so no write lands in a removed folder.
    return this.enqueue(async () => {
      if (this.state !== 'open') return;
      await this.cleanup();
    });
  }

  private async cleanup(): Promise<void> {
    this.state = 'aborted';
    this.scratch = null;
    const s = this.shard;
    this.shard = null;
    if (s) await s.fh.close().catch(() => undefined);
    await fs.rm(this.tmpDir, { recursive: true, force: true });
  }
}

/** Move `length` bytes at `from` forward by `by` bytes within one file, last chunk first. */
async function shiftUp(fh: FileHandle, from: number, length: number, by: number): Promise<void> {
  const buf = new Uint8Array(Math.min(MOVE_CHUNK, Math.max(length, 1)));
  let end = length;
  while (end > 0) {
    const start = Math.max(0, end - buf.byteLength);
    const len = end - start;
    let got = 0;
    while (got < len) {
      const { bytesRead } = await fh.read(buf, got, len - got, from + start + got);
      if (bytesRead === 0) throw new Error('shard temp file shrank while moving data');
      got += bytesRead;
    }
    let put = 0;
    while (put < len) {
      const { bytesWritten } = await fh.write(buf, put, len - put, from + by + start + put);
      put += bytesWritten;
    }
    end = start;
  }
}

/** The tokenizer files of `fromDir`, read into memory (they are small) so they are hashed as they are copied. */
async function readTokenizer(fromDir: string, skip?: (name: string) => boolean): Promise<Array<[string, Buffer]>> {
  let names: string[];
  try {
    names = await fs.readdir(fromDir);
  } catch (e) {
    throw new UserError(`${fromDir}: cannot list the folder to copy tokenizer files from (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); expected the base model's folder`, { file: fromDir, cause: e });
  }
  const out: Array<[string, Buffer]> = [];
  for (const name of names.sort()) {
    if (!isTokenizerFile(name) || skip?.(name)) continue;
    const src = path.join(fromDir, name);
    // Hugging Face caches hold symlinks into a blob store; stat follows them.
    if (!(await fs.stat(src)).isFile()) continue;
    out.push([name, await fs.readFile(src)]);
  }
  return out;
}
