/**
 * The build in dist/ (made by test/setup/build.ts before any test file starts) is what users run:
 * every file a built module names by a relative path must be there, in a form Node loads.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers.js';

const DIST = path.join(REPO, 'dist');

async function builtModules(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await builtModules(p)));
    else if (e.name.endsWith('.js')) out.push(p);
  }
  return out;
}

/** Relative specifiers of static imports, re-exports, `import('...')` and `new URL('...', import.meta.url)`, with what follows each. */
function relativeTargets(code: string): { spec: string; rest: string }[] {
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)(["'])(\.\.?\/[^"']+)\1([^;\n]*)/g;
  return [...code.matchAll(re)].map((m) => ({ spec: m[2], rest: m[3] }));
}

/** Files under `dir`, relative to it. */
async function filesUnder(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(dir, r)));
    else out.push(r);
  }
  return out;
}

describe('dist/', () => {
  it('carries every data file of src/ (all but TypeScript and Markdown), byte for byte, at the same place', async () => {
    const data = (await filesUnder(path.join(REPO, 'src'))).filter((f) => !f.endsWith('.ts') && !f.endsWith('.md'));
    expect(data).toContain(path.join('data', 'chat-phrasings.json'));
    for (const f of data) expect((await fs.readFile(path.join(DIST, f))).equals(await fs.readFile(path.join(REPO, 'src', f))), f).toBe(true);
  });


  it('every relative import of a built module names a file in dist/, and a JSON import keeps its type attribute', async () => {
    const missing: string[] = [];
    const jsonImports: string[] = [];
    const modules = await builtModules(DIST);
    expect(modules.length).toBeGreaterThan(100);
    for (const file of modules) {
      const code = (await fs.readFile(file, 'utf8')).replace(/\n\/\/# sourceMappingURL=.*$/s, '');
      for (const { spec, rest } of relativeTargets(code)) {
        const target = path.resolve(path.dirname(file), spec);
        const rel = `${path.relative(DIST, file)} -> ${spec}`;
        if (!(await fs.stat(target).then((s) => s.isFile(), () => false))) missing.push(rel);
        if (spec.endsWith('.json')) {
          jsonImports.push(rel);
          // Without the attribute Node refuses to load a JSON module.
          expect(rest, rel).toMatch(/with\s*\{\s*type:\s*["']json["']\s*\}/);
        }
      }
    }
    expect(missing).toEqual([]);
    // The chat data generator reads its phrasings from a JSON file next to it.
    expect(jsonImports).toContain(`${path.join('data', 'chat.js')} -> ./chat-phrasings.json`);
  });
});
