import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CHECKSUM_ALGORITHM, checksumFileRanges } from '../util/checksum.js';

/**
 * `mergelab_manifest.json`: written by the checkpoint writer as the last file of every folder it
 * produces. It says two things: mergelab wrote this folder (so `merge --out` may replace it), and
 * what each file held (size and checksums), so a cached checkpoint can be checked before it is
 * read. A file's checksums are over consecutive byte ranges ("segments"): a safetensors shard has
 * two, the header and the tensor data, because the writer streams the data first and writes the
 * header last, and hashes each as it goes; other files have one.
 */

export const MANIFEST_FILE = 'mergelab_manifest.json';

const FileSum = z.object({
  bytes: z.number().int().nonnegative(),
  /** [length, checksum] of consecutive byte ranges covering the file. */
  segments: z.array(z.tuple([z.number().int().nonnegative(), z.string().regex(/^[0-9a-f]{16}$/)])),
});
export type FileSum = z.infer<typeof FileSum>;

export const Manifest = z.object({
  format: z.literal('mergelab-checkpoint'),
  version: z.literal(1),
  algorithm: z.literal(CHECKSUM_ALGORITHM),
  files: z.record(z.string(), FileSum),
});
export type Manifest = z.infer<typeof Manifest>;

export function makeManifest(files: Record<string, FileSum>): Manifest {
  return { format: 'mergelab-checkpoint', version: 1, algorithm: CHECKSUM_ALGORITHM, files };
}

export type ManifestRead = { ok: true; manifest: Manifest } | { ok: false; missing: boolean; problem: string };

export async function readManifest(dir: string): Promise<ManifestRead> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, missing: code === 'ENOENT', problem: code === 'ENOENT' ? `${file} is missing` : `${file} cannot be read (${code})` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { ok: false, missing: false, problem: `${file} is not JSON (${(e as Error).message})` };
  }
  const m = Manifest.safeParse(json);
  if (!m.success) return { ok: false, missing: false, problem: `${file}: field '${m.error.issues[0].path.join('.')}': ${m.error.issues[0].message}` };
  for (const name of Object.keys(m.data.files)) {
    if (name === '' || name.includes('/') || name.includes('\\') || name === '.' || name === '..') return { ok: false, missing: false, problem: `${file}: file name ${JSON.stringify(name)} is not a plain file name` };
    const f = m.data.files[name];
    if (f.segments.reduce((a, [len]) => a + len, 0) !== f.bytes) return { ok: false, missing: false, problem: `${file}: the segments of ${name} do not add up to its ${f.bytes} bytes` };
  }
  return { ok: true, manifest: m.data };
}

/**
 * Check a folder against its manifest: every listed file present with its size (`full: false`,
 * a few stats), and with `full` every checksum (one sequential read of every file). Returns the
 * first problem, naming the file, or null when the folder is whole.
 */
export async function checkCheckpoint(dir: string, opts: { full: boolean }): Promise<string | null> {
  const m = await readManifest(dir);
  if (!m.ok) return m.problem;
  for (const [name, sum] of Object.entries(m.manifest.files)) {
    const file = path.join(dir, name);
    let size: number;
    try {
      size = (await fs.stat(file)).size;
    } catch (e) {
      return `${file} is missing (${(e as NodeJS.ErrnoException).code})`;
    }
    if (size !== sum.bytes) return `${file} is ${size} bytes, the manifest says ${sum.bytes}`;
  }
  if (!opts.full) return null;
  for (const [name, sum] of Object.entries(m.manifest.files)) {
    const file = path.join(dir, name);
    const got = await checksumFileRanges(file, sum.segments.map(([len]) => len));
    if (got === null) return `${file} cannot be read`;
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== sum.segments[i][1]) {
        const from = sum.segments.slice(0, i).reduce((a, [len]) => a + len, 0);
        return `${file}: bytes ${from}-${from + sum.segments[i][0]} do not match their checksum (${CHECKSUM_ALGORITHM} ${got[i]}, recorded ${sum.segments[i][1]})`;
      }
    }
  }
  return null;
}
