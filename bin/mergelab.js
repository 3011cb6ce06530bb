#!/usr/bin/env node
// Runs the command line built into dist/ (plain JavaScript, so it starts without compiling
// TypeScript). `npm install` builds it; a missing or stale build (sources edited since, or a pull
// without `npm install`) is rebuilt here first, so what runs is always what src/ says.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
if (existsSync(path.join(root, 'src'))) {
  const { isStale, build } = await import('../scripts/build.mjs');
  if (isStale(root)) await build(root);
}
await import('../dist/cli/main.js');
