import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_FILE, checkCheckpoint } from '../../src/checkpoint/manifest.js';
import { SWAP_STEPS, classifyOutDir, prepareOutDir } from '../../src/checkpoint/outdir.js';
import { openCheckpoint } from '../../src/checkpoint/reader.js';
import { tmpDir, writeTinyLlama } from '../merge/tiny-llama.js';
import { REPO } from '../sweep/helpers.js';

/**
 * `merge --out` never deletes what mergelab did not write, and a kill at any step of replacing an
 * earlier output leaves the old or the new folder (the next start finishing what the kill
 * interrupted), never neither. Runs the real CLI.
 */

let root: string;
const recipe = (w: number) => `merge_method: linear\nmodels:\n  - model: models/math\n    parameters: {weight: ${w}}\n  - model: models/chat\n    parameters: {weight: ${1 - w}}\ndtype: float32\n`;

// By absolute URL: the merges run in folders outside the repository, where `--import tsx` does not resolve.
const TSX = pathToFileURL(path.join(path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist', 'loader.mjs')).href;

function merge(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  return execa('node', ['--import', TSX, path.join(REPO, 'src/cli/main.ts'), 'merge', ...args], { cwd: opts.cwd ?? root, reject: false, all: true, env: opts.env });
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of Object.entries(await snapshot(p))) out[`${e.name}/${k}`] = v;
    else out[e.name] = (await fs.readFile(p)).toString('base64');
  }
  return out;
}

beforeAll(async () => {
  root = await tmpDir('mergelab-outdir-');
  await writeTinyLlama(path.join(root, 'models/base'), { seed: 1 });
  await writeTinyLlama(path.join(root, 'models/math'), { seed: 2, baseSeed: 1, deltaScale: 0.05 });
  await writeTinyLlama(path.join(root, 'models/chat'), { seed: 3, baseSeed: 1, deltaScale: 0.05 });
  await fs.writeFile(path.join(root, 'old.yaml'), recipe(0.3));
  await fs.writeFile(path.join(root, 'new.yaml'), recipe(0.7));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('merge --out refuses a folder mergelab did not write', () => {
  it('--out . in a folder holding file.txt: a clear error naming the folder, the folder untouched, nothing written', async () => {
    const user = path.join(root, 'user-folder');
    await fs.mkdir(path.join(user, 'notes'), { recursive: true });
    await fs.writeFile(path.join(user, 'file.txt'), 'my thesis');
    await fs.writeFile(path.join(user, 'notes', 'a.md'), '# notes');
    const before = await snapshot(user);
    const parentBefore = (await fs.readdir(root)).sort();
    const r = await merge([path.join(root, 'new.yaml'), '--out', '.'], { cwd: user });
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toContain(`--out ${user}: the folder holds files mergelab did not write (file.txt, notes;`);
    expect(r.all).toContain('pass --force');
    expect(r.all).not.toMatch(/\n\s+at /); // no stack trace
    expect(await snapshot(user)).toEqual(before);
    expect((await fs.readdir(root)).sort()).toEqual(parentBefore);
  });

  it('replaces an earlier mergelab output, refuses one the user added a file to, and replaces anything with --force', async () => {
    const out = path.join(root, 'out-replace');
    expect((await merge(['old.yaml', '--out', out])).exitCode).toBe(0);
    expect(await classifyOutDir(out)).toEqual({ kind: 'mergelab' });
    const r = await merge(['new.yaml', '--out', out]);
    expect(r.exitCode, r.all).toBe(0);
    expect(await checkCheckpoint(out, { full: true })).toBeNull();
    expect(await fs.readFile(path.join(out, 'mergekit_config.yml'), 'utf8')).toContain('weight: 0.7');

    await fs.writeFile(path.join(out, 'eval-notes.txt'), 'keep me');
    const refused = await merge(['old.yaml', '--out', out]);
    expect(refused.exitCode).toBe(1);
    expect(refused.all).toContain(`--out ${out}: the folder holds files mergelab did not write (eval-notes.txt; mergelab wrote it, but not this entry)`);
    expect(await fs.readFile(path.join(out, 'eval-notes.txt'), 'utf8')).toBe('keep me');

    const forced = await merge(['old.yaml', '--out', out, '--force']);
    expect(forced.exitCode, forced.all).toBe(0);
    expect((await fs.readdir(out)).includes('eval-notes.txt')).toBe(false);
    expect(await classifyOutDir(out)).toEqual({ kind: 'mergelab' });
  });

  it('refuses a file at --out, accepts an empty folder', async () => {
    await fs.writeFile(path.join(root, 'a-file'), 'x');
    const r = await merge(['new.yaml', '--out', 'a-file']);
    expect(r.exitCode).toBe(1);
    expect(r.all).toContain(`--out ${path.join(root, 'a-file')}: exists and is not a folder`);
    await fs.mkdir(path.join(root, 'empty'));
    expect((await merge(['new.yaml', '--out', 'empty'])).exitCode).toBe(0);
    expect(await classifyOutDir(path.join(root, 'empty'))).toEqual({ kind: 'mergelab' });
  });
});

describe('a kill at each step of replacing --out', () => {
  it('leaves the old or the new folder at --out; the next start finishes the replacement and leaves nothing behind', { timeout: 600_000 }, async () => {
    // The new folder's bytes, for comparison. Named `out` like the folders below: the model card
    // (README.md) names the output folder.
    const ref = path.join(root, 'ref-new', 'out');
    expect((await merge(['new.yaml', '--out', ref])).exitCode).toBe(0);
    const newSnap = await snapshot(ref);
    const refOld = path.join(root, 'ref-old', 'out');
    expect((await merge(['old.yaml', '--out', refOld])).exitCode).toBe(0);
    const seen: string[] = [];
    for (const step of SWAP_STEPS) {
      const dir = path.join(root, `kill-${step}`);
      await fs.mkdir(dir);
      const out = path.join(dir, 'out');
      await fs.cp(refOld, out, { recursive: true });
      const oldSnap = await snapshot(out);
      const r = await merge(['../new.yaml', '--out', out], { cwd: dir, env: { MERGELAB_TEST_SWAP_KILL: step } });
      expect(r.signal, `${step}: ${r.all}`).toBe('SIGKILL');

      const at = async (): Promise<'old' | 'new' | 'nothing'> => {
        try {
          const s = await snapshot(out);
          if (JSON.stringify(s) === JSON.stringify(oldSnap)) return 'old';
          if (JSON.stringify(s) === JSON.stringify(newSnap)) return 'new';
          throw new Error(`${step}: --out holds neither the old nor the new folder: ${Object.keys(s).join(', ')}`);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'nothing';
          throw e;
        }
      };
      const right = await at();
      const beside = (await fs.readdir(dir)).sort();
      if (right === 'nothing') {
        // Only between the two renames (POSIX has no atomic exchange of non-empty folders): the
        // journal beside it names both whole folders.
        expect(step).toBe('old-aside');
        expect(beside).toContain('.out.mergelab-swap.json');
      }
      // The next start finishes the replacement before anything else: a merge to this --out, or
      // anything that opens it as a model.
      if (step === 'old-aside') await (await openCheckpoint(out)).close();
      else await prepareOutDir(out);
      const after = await at();
      expect(after, `${step}: after recovery`).not.toBe('nothing');
      expect(await checkCheckpoint(out, { full: true })).toBeNull();
      expect(await fs.readdir(dir), `${step}: leftovers`).toEqual(['out']);
      seen.push(`${step}: ${right} -> ${after}`);
    }
    // The kill happened after the journal, so every recovery completes the replacement.
    expect(seen).toEqual(['journal: old -> new', 'old-aside: nothing -> new', 'new-in-place: new -> new', 'old-removed: new -> new', 'journal-removed: new -> new']);
    expect(MANIFEST_FILE in newSnap).toBe(true);
  });

  it('a merge after a kill finishes the interrupted replacement first, then replaces it again', { timeout: 300_000 }, async () => {
    const dir = path.join(root, 'kill-then-merge');
    await fs.mkdir(dir);
    const out = path.join(dir, 'out');
    expect((await merge(['../old.yaml', '--out', out], { cwd: dir })).exitCode).toBe(0);
    expect((await merge(['../new.yaml', '--out', out], { cwd: dir, env: { MERGELAB_TEST_SWAP_KILL: 'old-aside' } })).signal).toBe('SIGKILL');
    const r = await merge(['../old.yaml', '--out', out], { cwd: dir });
    expect(r.exitCode, r.all).toBe(0);
    expect(await fs.readFile(path.join(out, 'mergekit_config.yml'), 'utf8')).toContain('weight: 0.3');
    expect(await fs.readdir(dir)).toEqual(['out']);
  });
});
