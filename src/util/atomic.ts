import { promises as fs, readdirSync, rmSync, type Dirent } from 'node:fs';
import path from 'node:path';
import { diskFull, isNoSpace } from './disk.js';
import { tempOwner, tempSibling } from './temp.js';

/** Write a file so readers never see it half-written: temp file in the same folder, then rename. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = tempSibling(target);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw isNoSpace(e) ? await diskFull(target, typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength, e) : e;
  }
}

/**
 * Build a folder under a temporary sibling name and rename it into place only when `build`
 * succeeds; on failure nothing is left behind. An existing `target` is replaced.
 */
export async function buildDirAtomic<T>(target: string, build: (tmpDir: string) => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(path.resolve(target)), { recursive: true });
  const tmp = tempSibling(path.resolve(target));
  await fs.mkdir(tmp, { recursive: true });
  try {
    const result = await build(tmp);
    await fs.rm(target, { recursive: true, force: true });
    await fs.rename(tmp, target);
    return result;
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Remove the temporary siblings under `dir` (and its subfolders, `depth` levels down) that were
 * made by one of `pids`: processes that were stopped mid-write and will not finish it.
 */
export function removeTempsOf(dir: string, pids: ReadonlySet<number>, depth = 2): string[] {
  const removed: string[] = [];
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return removed;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    const owner = tempOwner(e.name);
    if (owner !== null && pids.has(owner)) {
      rmSync(p, { recursive: true, force: true });
      removed.push(p);
    } else if (e.isDirectory() && depth > 0) removed.push(...removeTempsOf(p, pids, depth - 1));
  }
  return removed;
}
