import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO, 'bin', 'mergelab.js');

/** `mergelab ARGS` exactly as a user runs it: the launcher and the build in dist/ (see test/setup/build.ts). */
export function mergelab(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  return execa('node', [BIN, ...args], { cwd: opts.cwd ?? REPO, env: opts.env, reject: false, all: true });
}
