import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository's `src/` folder, whether this module runs from `src/util/` (tsx, tests) or from
 * the build in `dist/util/`: the digest is always of the TypeScript sources, so a cache entry made
 * by either serves the other.
 */
export const SRC_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(root: string, entry: string): string[] {
  const full = path.join(root, entry);
  const st = statSync(full); // throws for a listed entry that does not exist: a programming error
  if (st.isFile()) return [entry];
  return readdirSync(full)
    .flatMap((name) => sourceFiles(root, path.join(entry, name)))
    .filter((f) => f.endsWith('.ts'));
}

/**
 * Digest of the TypeScript sources under `entries` (files or folders, relative to `root`), in a
 * fixed order. Cache keys carry it so that a cached merge or evaluation is never served after the
 * code that produced it changed; a comment edit costs one recomputation, a stale score costs a
 * wrong conclusion.
 */
export function codeDigest(entries: readonly string[], root: string = SRC_ROOT): string {
  const files = [...new Set(entries.flatMap((e) => sourceFiles(root, e)))].map((f) => f.split(path.sep).join('/')).sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f + '\0');
    h.update(readFileSync(path.join(root, f)));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}
