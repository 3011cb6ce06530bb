// Transpiles src/**/*.ts to dist/**/*.js, one file for one file, so the CLI starts without
// compiling TypeScript at every launch. Plain JavaScript because `npm install` runs it (the
// `prepare` script) before anything could run TypeScript. Type checking stays with `tsc --noEmit`.
//
// The libraries every command loads at start (VENDORED) are each bundled into one file under
// dist/vendor/ and the build's imports point there: Node then reads one file instead of dozens
// (zod alone is about a hundred modules), which cuts their load time about threefold
// (bench/cli-startup.ts). Everything else is imported from node_modules as usual.
//
//   node scripts/build.mjs          build dist/ (atomically: a temporary folder renamed into place)
//   node scripts/build.mjs --check  exit 1 when dist/ is missing or older than src/
import { promises as fs, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = '.build-stamp';
// The first Node 20 that reads import attributes: for plain `node20` esbuild drops the
// `with { type: 'json' }` of a JSON import, and Node then refuses to load the module.
const TARGET = 'node20.10';
/** Pure-JavaScript packages with no files of their own to find at run time. */
const VENDORED = ['zod', 'yaml', 'commander'];
const VENDOR_IMPORT = new RegExp(`(\\bfrom\\s*|\\bimport\\s*\\(\\s*)(["'])(${VENDORED.join('|')})\\2`, 'g');

/** One ESM file per vendored package, re-exporting what the package exports (its default too). */
async function bundleVendored(esbuild, tmp) {
  const entries = {};
  for (const pkg of VENDORED) {
    // Named one by one, as Node sees them: `export *` from a CommonJS package (yaml and
    // commander are, for Node) would give the bundle no named exports at all.
    const names = Object.keys(await import(pkg));
    const entry = path.join(tmp, `vendor-entry-${pkg}.mjs`);
    await fs.writeFile(entry, `export { ${names.join(', ')} } from '${pkg}';\n`);
    entries[`vendor/${pkg}`] = entry;
  }
  await esbuild.build({ entryPoints: entries, outdir: tmp, bundle: true, format: 'esm', platform: 'node', target: TARGET, outExtension: { '.js': '.js' }, logLevel: 'warning',
    // A CommonJS package (commander) requires Node's built-ins; an ES module has no `require` of its own.
    banner: { js: "import { createRequire as __vendorRequire } from 'node:module'; const require = __vendorRequire(import.meta.url);" },
  });
  for (const e of Object.values(entries)) await fs.rm(e);
}

/** `from "zod"` -> `from "../vendor/zod.js"`, relative to the file at `rel` (inside dist). */
function pointAtVendored(code, rel) {
  const up = path.posix.relative(path.posix.dirname(rel.split(path.sep).join('/')), 'vendor');
  return code.replace(VENDOR_IMPORT, (_m, head, q, pkg) => `${head}${q}${up.startsWith('.') ? up : `./${up}`}/${pkg}.js${q}`);
}

/** Files under `dir` whose name `keep` accepts, recursively, as paths relative to `dir`. */
function filesUnder(dir, keep, rel = '') {
  const out = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...filesUnder(dir, keep, r));
    else if (keep(e.name)) out.push(r);
  }
  return out;
}

/** Source files of the product (tests and type declarations are not shipped). */
function sources(dir) {
  return filesUnder(dir, (n) => n.endsWith('.ts') && !n.endsWith('.d.ts') && !n.endsWith('.test.ts'));
}

/**
 * Every other file of src/ but documentation: data a module imports (`import X from './x.json'
 * with { type: 'json' }`) or reads beside itself (`kernels.wasm` next to `import.meta.url`), shipped
 * as is at the same place.
 */
function dataFiles(dir) {
  return filesUnder(dir, (n) => !n.endsWith('.ts') && !n.endsWith('.md'));
}

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    // A deleted or added file changes its folder's mtime, so folders count too.
    newest = Math.max(newest, statSync(p).mtimeMs, e.isDirectory() ? newestMtime(p) : 0);
  }
  return newest;
}

/** True when dist/ is missing or a source (or the build script) changed after the last build. */
export function isStale(root = ROOT) {
  let built;
  try {
    built = statSync(path.join(root, 'dist', STAMP)).mtimeMs;
  } catch {
    return true;
  }
  return Math.max(newestMtime(path.join(root, 'src')), statSync(fileURLToPath(import.meta.url)).mtimeMs) > built;
}

// Worker entry points are named as sibling `.ts` files (`new URL('./worker.ts', import.meta.url)`);
// in dist the sibling is the `.js` file. Anything else naming a `.ts` file at run time would break
// in dist silently, so it fails the build instead.
const WORKER_URL = /new URL\((['"])\.\/([A-Za-z0-9_-]+)\.ts\1, import\.meta\.url\)/g;

function rewriteWorkerUrls(code, file, all) {
  return code.replace(WORKER_URL, (_m, q, name) => {
    const target = path.join(path.dirname(file), `${name}.ts`);
    if (!all.has(target)) throw new Error(`${file}: worker ${name}.ts does not exist`);
    return `new URL(${q}./${name}.js${q}, import.meta.url)`;
  });
}

/** Build dist/ from src/; returns the number of files written. */
export async function build(root = ROOT) {
  const esbuild = await import('esbuild');
  const src = path.join(root, 'src');
  const files = sources(src);
  const all = new Set(files);
  const tmp = path.join(root, `dist.tmp-${process.pid}`);
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  try {
    await bundleVendored(esbuild, tmp);
    await Promise.all(
      files.map(async (f) => {
        const code = rewriteWorkerUrls(await fs.readFile(path.join(src, f), 'utf8'), f, all);
        if (/\.ts(['"])\s*,\s*import\.meta\.url/.test(code)) throw new Error(`src/${f}: names a .ts file next to it at run time; dist would not have it`);
        const out = await esbuild.transform(code, { loader: 'ts', format: 'esm', target: TARGET, platform: 'node', sourcefile: path.join('..', 'src', f), sourcemap: 'inline' });
        const dest = path.join(tmp, f.replace(/\.ts$/, '.js'));
        await fs.mkdir(path.dirname(dest), { recursive: true });
        await fs.writeFile(dest, pointAtVendored(out.code, f.replace(/\.ts$/, '.js')));
      }),
    );
    await Promise.all(
      dataFiles(src).map(async (f) => {
        await fs.mkdir(path.join(tmp, path.dirname(f)), { recursive: true });
        await fs.copyFile(path.join(src, f), path.join(tmp, f));
      }),
    );
    await fs.writeFile(path.join(tmp, STAMP), `${files.length} files\n`);
    await publish(tmp, path.join(root, 'dist'));
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return files.length;
}

/** Put the new build in place; a build published meanwhile by another process is as good as ours. */
async function publish(tmp, dist) {
  try {
    await fs.rename(tmp, dist);
    return;
  } catch (e) {
    if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
  }
  const old = `${dist}.old-${process.pid}`;
  try {
    await fs.rename(dist, old);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  try {
    await fs.rename(tmp, dist);
  } catch (e) {
    if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
  }
  await fs.rm(old, { recursive: true, force: true });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const stale = isStale();
    if (stale) console.error('dist/ is missing or older than src/: run `npm run build`');
    process.exit(stale ? 1 : 0);
  }
  const t0 = performance.now();
  const n = await build();
  console.log(`built dist/: ${n} files in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
}
