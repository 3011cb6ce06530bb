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

/** The UMD builds that work as classic scripts: they define window.vega, vegaLite, vegaEmbed. */
export function loadVegaAssets(): Promise<VegaAssets> {
  cached ??= (async () => {
    const read = async (pkg: string, file: string): Promise<string> => fs.readFile(path.join(await packageDir(pkg), 'build', file), 'utf8');
    const [vega, vegaLite, vegaEmbed] = await Promise.all([read('vega', 'vega.min.js'), read('vega-lite', 'vega-lite.min.js'), read('vega-embed', 'vega-embed.min.js')]);
    return { vega, vegaLite, vegaEmbed };
  })();
  return cached;
}
