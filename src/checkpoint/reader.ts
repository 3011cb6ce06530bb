import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../util/errors.js';
import { recoverSwap } from './outdir.js';
import { bf16ToF32, f16ToF32, isFloatDType, toF32, uninitBuffer, type DType } from './dtype.js';
import { readExactly, readSafetensorsHeader, type SafetensorsEntry, type SafetensorsHeader } from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  numel: number;
  /** Absolute path of the safetensors file holding the tensor. */
  file: string;
  /** Absolute byte offset of the tensor's data in `file`. */
  byteOffset: number;
  byteLength: number;
}

export interface Checkpoint {
  dir: string;
  config: Record<string, unknown> | null;
  /** The first shard's safetensors `__metadata__` (writers repeat it in every shard), or null. */
  metadata: Record<string, string> | null;
  /** Tensor names in file order: shards in index order, tensors by data offset within a shard. */
  tensorNames(): string[];
  /** UserError if absent. */
  info(name: string): TensorInfo;
  has(name: string): boolean;
  /**
   * The tensor decoded to f32. F64/F32/F16/BF16 only (UserError otherwise). With `into` (at
   * least numel elements) the result is `into.subarray(0, numel)`, so a caller can reuse one
   * buffer across tensors (2-3x faster than fresh pages); otherwise a fresh buffer.
   */
  readF32(name: string, into?: Float32Array): Promise<Float32Array>;
  /** The tensor's bytes, into a fresh buffer at offset 0 (so typed views are aligned) or into `into`. */
  readRaw(name: string, into?: Uint8Array): Promise<{ dtype: DType; shape: number[]; bytes: Uint8Array }>;
  close(): Promise<void>;
}

/** Count NaN and ±Inf elements (the engine warns with the tensor's name when this is non-zero). */
export function findNonFinite(data: Float32Array): number {
  let bad = 0;
  // x - x is 0 for finite x and NaN for NaN and ±Inf: one branch-free test.
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x - x !== 0) bad++;
  }
  return bad;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read ${what}: ${(e as Error).message}`, { file, cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: ${what} is not valid JSON (${(e as Error).message})`, { file, cause: e });
  }
}

async function openShard(file: string, referencedBy?: string): Promise<{ fh: FileHandle; header: SafetensorsHeader }> {
  let fh: FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const msg = referencedBy
      ? `${referencedBy}: weight_map names shard "${path.basename(file)}", but ${file} ${code === 'ENOENT' ? 'does not exist' : `cannot be opened (${code})`}; expected every shard in the index to be present`
      : `${file}: cannot open (${code ?? (e as Error).message})`;
    throw new UserError(msg, { file: referencedBy ?? file, field: referencedBy ? 'weight_map' : undefined, cause: e });
  }
  try {
    return { fh, header: await readSafetensorsHeader(fh, file) };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Frozen: infos are shared by every caller, and a mutated shape would corrupt later reads. */
function makeInfo(e: SafetensorsEntry, file: string): TensorInfo {
  return Object.freeze({ name: e.name, dtype: e.dtype, shape: Object.freeze([...e.shape]) as number[], numel: e.numel, file, byteOffset: e.byteOffset, byteLength: e.byteLength });
}

class SafetensorsCheckpoint implements Checkpoint {
  private closed = false;
  constructor(
    readonly dir: string,
    readonly config: Record<string, unknown> | null,
    readonly metadata: Record<string, string> | null,
    private readonly order: string[],
    private readonly infos: Map<string, TensorInfo>,
    private readonly handles: Map<string, FileHandle>,
  ) {}

  tensorNames(): string[] {
    return [...this.order];
  }

  has(name: string): boolean {
    return this.infos.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.infos.get(name);
    if (!t) throw new UserError(`${this.dir}: checkpoint has no tensor "${name}" (it has ${this.order.length} tensors)`, { file: this.dir, field: name });
    return t;
  }

  private handle(t: TensorInfo): FileHandle {
    if (this.closed) throw new Error(`checkpoint ${this.dir} is closed`);
    const fh = this.handles.get(t.file);
    if (!fh) throw new Error(`no open handle for ${t.file}`);
    return fh;
  }

  async readRaw(name: string, into?: Uint8Array): Promise<{ dtype: DType; shape: number[]; bytes: Uint8Array }> {
    const t = this.info(name);
    let bytes: Uint8Array;
    if (into) {
      if (into.byteLength < t.byteLength) throw new Error(`readRaw("${name}"): buffer has ${into.byteLength} bytes, need ${t.byteLength}`);
      bytes = into.subarray(0, t.byteLength);
    } else {
      bytes = new Uint8Array(uninitBuffer(t.byteLength), 0, t.byteLength);
    }
    await readExactly(this.handle(t), t.file, bytes, t.byteOffset, `tensor "${name}"`);
    return { dtype: t.dtype, shape: [...t.shape], bytes };
  }

  async readF32(name: string, into?: Float32Array): Promise<Float32Array> {
    const t = this.info(name);
    if (!isFloatDType(t.dtype)) {
      throw new UserError(`${t.file}: tensor "${name}" has dtype ${t.dtype}; expected a float dtype (F64, F32, F16, BF16) to merge it`, { file: t.file, field: name });
    }
    let out: Float32Array;
    if (into) {
      if (into.length < t.numel) throw new Error(`readF32("${name}"): buffer has ${into.length} elements, need ${t.numel}`);
      out = into.subarray(0, t.numel);
    } else {
      out = new Float32Array(uninitBuffer(t.numel * 4), 0, t.numel);
    }
    const outBytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    if (t.dtype === 'F32') {
      await readExactly(this.handle(t), t.file, outBytes, t.byteOffset, `tensor "${name}"`);
      return out;
    }
    if (t.dtype === 'BF16' || t.dtype === 'F16') {
      // Read the 16-bit data into the upper half of the f32 result and widen in place: peak
      // memory is the f32 tensor alone, not f32 plus a second 16-bit buffer.
      const half = new Uint16Array(out.buffer, out.byteOffset + t.numel * 2, t.numel);
      await readExactly(this.handle(t), t.file, new Uint8Array(half.buffer, half.byteOffset, half.byteLength), t.byteOffset, `tensor "${name}"`);
      return t.dtype === 'BF16' ? bf16ToF32(half, out) : f16ToF32(half, out);
    }
    const { bytes } = await this.readRaw(name);
    out.set(toF32(t.dtype, bytes));
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.handles.values()].map((h) => h.close()));
  }
}

/** Why a folder of PyTorch pickles is refused, and how to convert it. */
function pickleMessage(dir: string, pickles: string[]): string {
  const shown = pickles.slice(0, 3).join(', ') + (pickles.length > 3 ? `, ... (${pickles.length} files)` : '');
  return (
    `${dir}: holds PyTorch pickle weights (${shown}) and no safetensors; convert them to safetensors first. mergelab does not ` +
    `read pickles because unpickling a checkpoint runs whatever code it contains. Convert once, in Python, where you trust the files: ` +
    `python -c "import sys, transformers; m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype='auto'); ` +
    `m.save_pretrained(sys.argv[2], safe_serialization=True); transformers.AutoTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])" ` +
    `${dir} ${dir}-safetensors (or the safetensors project's convert.py), then point the recipe or --model-dir at the new folder`
  );
}

/**
 * Open a Hugging Face model folder: `model.safetensors` alone, or shards listed by
 * `model.safetensors.index.json`. Only headers are read here; tensors are read one at a time
 * with positioned reads on handles kept open until close().
 */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  const root = path.resolve(dir);
  let st;
  try {
    // A folder a crash left aside while replacing it is put back (or the replacement finished) first.
    st = await fs.stat(root).catch(async (e: unknown) => ((await recoverSwap(root)) ? fs.stat(root) : Promise.reject(e)));
  } catch {
    throw new UserError(`${dir}: model folder does not exist; expected a Hugging Face folder with ${SINGLE_FILE} or ${INDEX_FILE}`, { file: dir });
  }
  if (!st.isDirectory()) throw new UserError(`${dir}: is not a folder; expected a Hugging Face model folder`, { file: dir });

  let config: Record<string, unknown> | null = null;
  const configFile = path.join(root, 'config.json');
  if (await exists(configFile)) {
    const c = await readJson(configFile, 'config.json');
    if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new UserError(`${configFile}: expected a JSON object`, { file: configFile });
    config = c as Record<string, unknown>;
  }

  const indexFile = path.join(root, INDEX_FILE);
  const singleFile = path.join(root, SINGLE_FILE);
  const handles = new Map<string, FileHandle>();
  const infos = new Map<string, TensorInfo>();
  const order: string[] = [];
  let metadata: Record<string, string> | null = null;
  try {
    if (await exists(indexFile)) {
      const idx = await readJson(indexFile, 'the shard index');
      const wm = (idx as { weight_map?: unknown } | null)?.weight_map;
      if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) {
        throw new UserError(`${indexFile}: missing "weight_map", expected {"weight_map": {tensor name: shard file}}`, { file: indexFile, field: 'weight_map' });
      }
      const byShard = new Map<string, string[]>();
      for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
        if (typeof shard !== 'string' || shard === '' || path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
          throw new UserError(`${indexFile}: weight_map["${name}"] is ${JSON.stringify(shard)}, expected a shard file name inside ${dir}`, { file: indexFile, field: `weight_map.${name}` });
        }
        let list = byShard.get(shard);
        if (!list) byShard.set(shard, (list = []));
        list.push(name);
      }
      if (byShard.size === 0) throw new UserError(`${indexFile}: weight_map is empty, expected at least one tensor`, { file: indexFile, field: 'weight_map' });
      // Shard names are zero-padded, so name order is file order.
      for (const shard of [...byShard.keys()].sort()) {
        const file = path.join(root, shard);
        const { fh, header } = await openShard(file, indexFile);
        handles.set(file, fh);
        if (handles.size === 1) metadata = header.metadata;
        const wanted = new Set(byShard.get(shard));
        const present = new Set(header.entries.map((e) => e.name));
        for (const name of wanted) {
          if (!present.has(name)) {
            throw new UserError(
              `${indexFile}: weight_map puts tensor "${name}" in ${shard}, but ${file} has no tensor of that name (it has ${present.size}); expected the index to match the shard headers`,
              { file: indexFile, field: `weight_map.${name}` },
            );
          }
        }
        for (const e of header.entries) {
          if (!wanted.has(e.name)) continue;
          infos.set(e.name, makeInfo(e, file));
          order.push(e.name);
        }
      }
    } else if (await exists(singleFile)) {
      const { fh, header } = await openShard(singleFile);
      handles.set(singleFile, fh);
      metadata = header.metadata;
      for (const e of header.entries) {
        infos.set(e.name, makeInfo(e, singleFile));
        order.push(e.name);
      }
    } else {
      const files = await fs.readdir(root);
      const pickles = files.filter((f) => /\.(bin|pt|pth|ckpt)$/.test(f));
      if (pickles.length) throw new UserError(pickleMessage(dir, pickles), { file: dir });
      const hint = files.some((f) => f.endsWith('.safetensors'))
        ? ` (found ${files.filter((f) => f.endsWith('.safetensors')).join(', ')} but no index naming them)`
        : '';
      throw new UserError(`${dir}: no ${SINGLE_FILE} or ${INDEX_FILE}${hint}; expected a Hugging Face safetensors model folder`, { file: dir });
    }
  } catch (e) {
    await Promise.all([...handles.values()].map((h) => h.close()));
    throw e;
  }
  return new SafetensorsCheckpoint(root, config, metadata, order, infos, handles);
}
