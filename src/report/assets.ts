import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { VegaAssets } from './html.js';

const require = createRequire(import.meta.url);

/** The package's folder: its entry resolves, its package.json is not exported, so walk up to it. */
async function packageDir(name: string): Promise<string> {
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    try {
      const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === name) return dir;
    } catch {
      // no package.json here; keep walking
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the folder of package ${name} (is it installed?)`);
    dir = up;
  }
}

let cached: Promise<VegaAssets> | undefined;

/** vega's UMD build, which works as a classic script (window.vega); charts arrive compiled, so neither vega-lite nor vega-embed is needed. */
export function loadVegaAssets(): Promise<VegaAssets> {
  cached ??= (async () => ({ vega: await fs.readFile(path.join(await packageDir('vega'), 'build', 'vega.min.js'), 'utf8') }))();
  return cached;
}
