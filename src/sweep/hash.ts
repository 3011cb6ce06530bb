import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { readChecked, writeChecked } from '../util/checked.js';

/** Keys are JSON of plain data, so object key order must not matter: sort keys recursively. */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      return Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return x;
  });
}

export function sha256(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A short content key (96 bits is plenty for a cache; shorter folder names read better). */
export function contentKey(v: unknown): string {
  return sha256(stableJson(v)).slice(0, 24);
}

async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(file, { highWaterMark: 1 << 22 })
      .on('data', (c) => h.update(c))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return h.digest('hex');
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  const entries = await fs.readdir(path.join(root, rel), { withFileTypes: true });
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(root, r)));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

interface MemoEntry {
  files: Array<[string, number, number]>;
  hash: string;
}

/**
 * Content hashes of model folders, remembered by (file name, size, mtime) so a 14 GB checkpoint is
 * read once, not on every run. The memo lives in the experiment's cache folder.
 */
export class FolderHasher {
  private memo: Record<string, MemoEntry> | null = null;
  private dirty = false;
  /**
   * `readOnly`: use the memo but never write it (dry runs must not touch the cache; a run writes
   * it only once its plan is valid, see `allowWrites`). `onDamaged`: told about a memo that fails
   * its checksum, which is then removed and every hash recomputed.
   */
  constructor(
    private memoFile: string | null,
    private readOnly = false,
    private readonly onDamaged?: (file: string, problem: string) => void,
  ) {}

  /** From now on `save` writes the memo (to `file`, when the memo was not read from there). */
  allowWrites(file: string | null = this.memoFile): void {
    if (file !== this.memoFile) {
      this.memoFile = file;
      this.dirty = true;
    }
    this.readOnly = false;
  }

  private async load(): Promise<Record<string, MemoEntry>> {
    if (this.memo) return this.memo;
    this.memo = {};
    if (this.memoFile) {
      const r = await readChecked<Record<string, MemoEntry>>(this.memoFile);
      if (r.ok && r.value && typeof r.value === 'object') this.memo = r.value;
      else if (!r.ok && r.kind !== 'missing') {
        // A memo entry that lies would key the cache by the wrong content: recompute every hash.
        if (r.kind === 'damaged') this.onDamaged?.(this.memoFile, r.problem);
        if (!this.readOnly) await fs.rm(this.memoFile, { force: true });
        this.dirty = true;
      }
    }
    return this.memo;
  }

  async hash(dir: string): Promise<string> {
    const root = path.resolve(dir);
    const memo = await this.load();
    const files: Array<[string, number, number]> = [];
    for (const f of await listFiles(root)) {
      const st = await fs.stat(path.join(root, f));
      files.push([f, st.size, Math.floor(st.mtimeMs)]);
    }
    const prev = memo[root];
    if (prev && JSON.stringify(prev.files) === JSON.stringify(files)) return prev.hash;
    const parts: string[] = [];
    for (const [f, size] of files) parts.push(`${f}\0${size}\0${await hashFile(path.join(root, f))}`);
    const hash = sha256(parts.join('\n')).slice(0, 24);
    memo[root] = { files, hash };
    this.dirty = true;
    return hash;
  }

  async save(): Promise<void> {
    if (this.memoFile && !this.readOnly && this.dirty && this.memo) {
      await writeChecked(this.memoFile, this.memo);
      this.dirty = false;
    }
  }
}

/** Bytes of the weight files of a folder (safetensors), for the disk estimate. */
export async function weightBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await listFiles(path.resolve(dir))) {
    if (f.endsWith('.safetensors')) total += (await fs.stat(path.join(dir, f))).size;
  }
  return total;
}
