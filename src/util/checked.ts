import { promises as fs } from 'node:fs';
import { CHECKSUM_ALGORITHM, checksumOf } from './checksum.js';
import { writeFileAtomic } from './atomic.js';

/**
 * JSON files that carry their own checksum, for cache entries:
 *
 *   {"checksum":"xxh64:<16 hex>","bytes":<n>,"value":<the JSON of the value, n bytes>}\n
 *
 * The whole file stays JSON (`jq .value` reads it), and the checksum covers the exact bytes of
 * the value, so nothing is re-serialized to check it. A reader tells apart a missing file, a
 * damaged one (short, unparseable, checksum mismatch) and one without a checksum (written by an
 * older mergelab), and trusts none but a whole one.
 */

const HEAD = /^\{"checksum":"([a-z0-9]+):([0-9a-f]{16})","bytes":(\d+),"value":/;
const TAIL = '}\n';

export type CheckedRead<T> =
  | { ok: true; value: T }
  | { ok: false; kind: 'missing' }
  | { ok: false; kind: 'damaged' | 'unchecked'; problem: string };

export async function encodeChecked(value: unknown): Promise<Buffer> {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  const head = `{"checksum":"${CHECKSUM_ALGORITHM}:${await checksumOf(body)}","bytes":${body.length},"value":`;
  return Buffer.concat([Buffer.from(head, 'utf8'), body, Buffer.from(TAIL, 'utf8')]);
}

/** Check and parse the bytes of a checked file. */
export async function decodeChecked<T>(buf: Buffer): Promise<CheckedRead<T>> {
  if (buf.length === 0) return { ok: false, kind: 'damaged', problem: 'the file is empty' };
  const head = HEAD.exec(buf.subarray(0, 128).toString('latin1'));
  if (!head) {
    // A plain JSON file is an entry from before checksums; anything else is damage.
    try {
      JSON.parse(buf.toString('utf8'));
      return { ok: false, kind: 'unchecked', problem: 'it carries no checksum (written by an older mergelab)' };
    } catch {
      return { ok: false, kind: 'damaged', problem: `it does not start with its checksum header ({"checksum":"${CHECKSUM_ALGORITHM}:...})` };
    }
  }
  const [whole, alg, sum, bytesText] = head;
  if (alg !== CHECKSUM_ALGORITHM) return { ok: false, kind: 'unchecked', problem: `its checksum is ${alg}, not ${CHECKSUM_ALGORITHM}` };
  const start = whole.length;
  const bytes = Number(bytesText);
  const expected = start + bytes + TAIL.length;
  if (buf.length !== expected) return { ok: false, kind: 'damaged', problem: `it is ${buf.length} bytes long, expected ${expected}` };
  if (buf.subarray(start + bytes).toString('latin1') !== TAIL) return { ok: false, kind: 'damaged', problem: 'it does not end with the closing brace and newline' };
  const body = buf.subarray(start, start + bytes);
  const actual = await checksumOf(body);
  if (actual !== sum) return { ok: false, kind: 'damaged', problem: `its content's ${CHECKSUM_ALGORITHM} is ${actual}, the recorded checksum is ${sum}` };
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) as T };
  } catch (e) {
    return { ok: false, kind: 'damaged', problem: `its value is not JSON (${(e as Error).message})` };
  }
}

export async function readChecked<T>(file: string): Promise<CheckedRead<T>> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, kind: 'missing' };
    return { ok: false, kind: 'damaged', problem: `it cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  return decodeChecked<T>(buf);
}

/** Write `value` with its checksum, atomically (temp file, then rename). */
export async function writeChecked(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, await encodeChecked(value));
}
