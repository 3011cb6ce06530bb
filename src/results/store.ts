import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { diskFull, isNoSpace } from '../util/disk.js';
import { UserError } from '../util/errors.js';
import { ResultRecord } from './record.js';

/**
 * The results store of one experiment: `reports/EXP/results.jsonl`, one ResultRecord per line.
 *
 * Crash safety: a record is appended as one whole line in a single write and fsynced before the
 * point counts as done. A run killed mid-write can leave only a truncated LAST line (no newline):
 * loading drops it and, by default, cuts the file back to its last complete line so the next
 * append does not glue onto a fragment.
 *
 * results.csv and results.json are derived from these lines by src/results/export.ts.
 */

export const RESULTS_FILE = 'results.jsonl';

export function resultsPath(expDir: string): string {
  return path.join(expDir, RESULTS_FILE);
}

export interface LoadedResults {
  records: ResultRecord[];
  /** Bytes of a truncated last line that were dropped (0 when the file was whole). */
  droppedBytes: number;
}

/** Load the records; a missing file is an empty store. `repair` truncates a partial last line on disk. */
export async function loadResults(file: string, opts: { repair?: boolean } = {}): Promise<LoadedResults> {
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], droppedBytes: 0 };
    throw e;
  }
  const lastNl = buf.lastIndexOf(0x0a);
  const whole = lastNl + 1;
  const droppedBytes = buf.length - whole;
  if (droppedBytes > 0 && opts.repair !== false) await fs.truncate(file, whole);
  const text = buf.subarray(0, whole).toString('utf8');
  const records: ResultRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new UserError(`${file}:${i + 1}: not a JSON line (${(e as Error).message}); the results file was edited or corrupted — delete that line or the file to re-run those points`, { file });
    }
    const r = ResultRecord.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new UserError(`${file}:${i + 1}: field ${issue.path.join('.') || '(record)'}: ${issue.message} (expected a ResultRecord, see src/results/record.ts)`, { file });
    }
    records.push(r.data);
  }
  return { records, droppedBytes };
}

/** Append one record as one line and fsync it. */
export async function appendResult(file: string, record: ResultRecord): Promise<void> {
  const line = JSON.stringify(ResultRecord.parse(record)) + '\n';
  await fs.mkdir(path.dirname(file), { recursive: true });
  const fh = await fs.open(file, 'a+');
  try {
    // Never glue a record onto a fragment left by a crash (the loader normally repaired it already).
    const { size } = await fh.stat();
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        await fh.close();
        await loadResults(file, { repair: true });
        return appendResult(file, record);
      }
    }
    try {
      // One write may land in part (a disk filling up); the next then reports why.
      const bytes = Buffer.from(line);
      for (let done = 0; done < bytes.length; ) done += (await fh.write(bytes, done, bytes.length - done)).bytesWritten;
      await fh.sync();
    } catch (e) {
      // A part of the line may have landed: cut it off, so the file stays whole lines.
      await fh.truncate(size).catch(() => undefined);
      throw isNoSpace(e) ? await diskFull(file, Buffer.byteLength(line), e) : e;
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Replace the whole store (atomically): used to leave the file in the plan's order at the end of a run. */
export async function writeResults(file: string, records: ResultRecord[]): Promise<void> {
  await writeFileAtomic(file, records.map((r) => JSON.stringify(r) + '\n').join(''));
}

/** A record without what legitimately differs between runs (timings), for comparisons. */
export function comparable(r: ResultRecord): Omit<ResultRecord, 'timings'> {
  const { timings: _t, ...rest } = r;
  return rest;
}
