import type { FileHandle } from 'node:fs/promises';
import { UserError } from '../util/errors.js';
import { DTYPES, dtypeByteSize, isDType, type DType } from './dtype.js';

/** The reference implementation refuses headers above this; so do we (a corrupt length would otherwise allocate gigabytes). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  numel: number;
  /** Absolute byte offset of the tensor's data in the file. */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  file: string;
  fileSize: number;
  /** 8 + header length: where the data section starts. */
  dataStart: number;
  /** Tensors in the order their data lies in the file. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string> | null;
}

/** Read exactly `length` bytes at `position`, or fail naming the file (it was truncated or changed under us). */
export async function readExactly(fh: FileHandle, file: string, buf: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  // A single read is capped near 2 GiB, and reads may return short; loop in bounded chunks.
  const CHUNK = 1 << 30;
  while (done < buf.byteLength) {
    const len = Math.min(CHUNK, buf.byteLength - done);
    const { bytesRead } = await fh.read(buf, done, len, position + done);
    if (bytesRead === 0) {
      throw new UserError(
        `${file}: file ended after ${position + done} bytes while reading ${what} (expected ${buf.byteLength} bytes from offset ${position}); the file is truncated or was changed while open`,
        { file },
      );
    }
    done += bytesRead;
  }
}

function fmtShape(shape: unknown): string {
  return Array.isArray(shape) ? `[${shape.join(', ')}]` : JSON.stringify(shape);
}

/**
 * Parse and validate a safetensors header with positioned reads (the tensor data is never touched).
 * Every problem is a UserError naming the file, the tensor and what was expected.
 */
export async function readSafetensorsHeader(fh: FileHandle, file: string): Promise<SafetensorsHeader> {
  const fileSize = (await fh.stat()).size;
  if (fileSize < 8) {
    throw new UserError(`${file}: not a safetensors file: it is ${fileSize} bytes long, expected at least 8 (the header length) — truncated?`, { file });
  }
  const lenBuf = new Uint8Array(8);
  await readExactly(fh, file, lenBuf, 0, 'the header length');
  const headerLen64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    throw new UserError(
      `${file}: header length field says ${headerLen64} bytes, expected at most ${MAX_HEADER_BYTES} (100 MB); the file is corrupt or not safetensors`,
      { file, field: 'header length' },
    );
  }
  const headerLen = Number(headerLen64);
  if (8 + headerLen > fileSize) {
    throw new UserError(
      `${file}: header length field says ${headerLen} bytes but the file has only ${fileSize - 8} bytes after it; the file is truncated or the length is corrupt`,
      { file, field: 'header length' },
    );
  }
  const headerBuf = new Uint8Array(headerLen);
  await readExactly(fh, file, headerBuf, 8, 'the JSON header');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBuf));
  } catch (e) {
    throw new UserError(`${file}: the ${headerLen}-byte header is not valid UTF-8 JSON (${(e as Error).message}); expected a JSON object of tensors`, { file, cause: e });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new UserError(`${file}: the header is JSON ${Array.isArray(json) ? 'array' : typeof json}, expected an object mapping tensor names to {dtype, shape, data_offsets}`, { file });
  }
  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  let metadata: Record<string, string> | null = null;
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new UserError(`${file}: "__metadata__" is ${JSON.stringify(raw)}, expected an object of strings`, { file, field: '__metadata__' });
      }
      metadata = {};
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        // Some writers put non-string values here; keep them as text rather than reject a loadable file.
        metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      continue;
    }
    const where = `${file}: tensor "${name}"`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new UserError(`${where}: entry is ${JSON.stringify(raw)}, expected {dtype, shape, data_offsets}`, { file, field: name });
    }
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (!isDType(dtype)) {
      throw new UserError(`${where}: unknown dtype ${JSON.stringify(dtype)}, expected one of ${DTYPES.join(', ')}`, { file, field: name });
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new UserError(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`, { file, field: name });
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      throw new UserError(`${where}: data_offsets ${JSON.stringify(offsets)}, expected [begin, end] with 0 <= begin <= end`, { file, field: name });
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const need = numel * dtypeByteSize(dtype);
    const [begin, end] = offsets as [number, number];
    if (!Number.isSafeInteger(need) || end - begin !== need) {
      throw new UserError(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but dtype ${dtype} with shape ${fmtShape(shape)} needs ${need} bytes`,
        { file, field: name },
      );
    }
    entries.push({ name, dtype, shape: [...(shape as number[])], numel, byteOffset: dataStart + begin, byteLength: need });
  }
  entries.sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  // Sorted by begin, a tensor overlaps some earlier one exactly when it starts before the furthest end so far.
  let maxEnd = 0;
  let maxEndName = '';
  for (const e of entries) {
    const begin = e.byteOffset - dataStart;
    const end = begin + e.byteLength;
    if (end > dataSize) {
      throw new UserError(
        `${file}: tensor "${e.name}" has data_offsets [${begin}, ${end}] but the data section is only ${dataSize} bytes (file ${fileSize} bytes); the file is truncated or its header is corrupt`,
        { file, field: e.name },
      );
    }
    // Zero-length tensors occupy no bytes, so they cannot collide with anything.
    if (e.byteLength === 0) continue;
    if (begin < maxEnd) {
      throw new UserError(
        `${file}: tensor "${e.name}" data_offsets [${begin}, ${end}] overlap tensor "${maxEndName}" (which ends at ${maxEnd}); expected disjoint byte ranges`,
        { file, field: e.name },
      );
    }
    maxEnd = end;
    maxEndName = e.name;
  }
  return { file, fileSize, dataStart, entries, metadata };
}

/**
 * Serialize a header whose JSON is padded with spaces to at least `minLength` bytes and to a
 * multiple of 8 (the reference writer pads the same way so the data section stays aligned).
 */
export function encodeSafetensorsHeader(
  tensors: ReadonlyArray<{ name: string; dtype: DType; shape: number[]; begin: number; end: number }>,
  metadata: Record<string, string> | null,
  minLength = 0,
): Uint8Array {
  // No prototype: a tensor named "__proto__" must become a key, not replace the prototype.
  const obj: Record<string, unknown> = Object.create(null);
  if (metadata) obj.__metadata__ = metadata;
  for (const t of tensors) obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] };
  const json = new TextEncoder().encode(JSON.stringify(obj));
  let len = Math.max(json.length, minLength);
  len = Math.ceil(len / 8) * 8;
  const out = new Uint8Array(8 + len);
  new DataView(out.buffer).setBigUint64(0, BigInt(len), true);
  out.fill(0x20, 8);
  out.set(json, 8);
  return out;
}
