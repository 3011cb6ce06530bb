/**
 * Registers tfjs-core's gradients under Node.
 *
 * `@tensorflow/tfjs-core/dist/register_all_gradients` is an ESM file with extension-less and
 * directory imports (`./gradients` is both a file and a folder), which Node's and tsx's ESM
 * resolvers reject. We bundle that one entry point with esbuild (shipped with tsx) into a CommonJS
 * file once per tfjs version and require it. The bundle carries its own copy of the op wrappers,
 * but tfjs keeps its engine and its gradient registry on a global namespace, so the copy registers
 * into, and runs on, the same engine as our `@tensorflow/tfjs-core` import.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let done = false;

export function registerAllGradients(): void {
  if (done) return;
  const corePkg = require.resolve('@tensorflow/tfjs-core/package.json');
  const coreDir = path.dirname(corePkg);
  const version = (JSON.parse(fs.readFileSync(corePkg, 'utf8')) as { version: string }).version;
  const cacheDir = path.join(coreDir, '..', '..', '.cache', 'mergelab');
  const out = path.join(cacheDir, `tfjs-core-gradients-${version}.cjs`);
  if (!fs.existsSync(out)) {
    const esbuild = require('esbuild') as typeof import('esbuild');
    const res = esbuild.buildSync({
      entryPoints: [path.join(coreDir, 'dist', 'register_all_gradients.js')],
      bundle: true,
      format: 'cjs',
      platform: 'node',
      write: false,
      logLevel: 'error',
    });
    fs.mkdirSync(cacheDir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, res.outputFiles[0].text);
    fs.renameSync(tmp, out);
  }
  require(out);
  done = true;
}
