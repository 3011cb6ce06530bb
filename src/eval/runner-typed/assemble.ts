/**
 * Assembles kernels.wat into kernels.wasm (the committed binary the runner loads). The test
 * `test/eval/fast-kernels.test.ts` assembles again and compares, so the two cannot drift.
 *   npx tsx src/eval/runner-typed/assemble.ts
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WAT_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kernels.wat');
export const WASM_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kernels.wasm');

export async function assembleKernels(): Promise<Uint8Array> {
  const wabt = await (await import('wabt')).default();
  const mod = wabt.parseWat(path.basename(WAT_FILE), await fs.readFile(WAT_FILE, 'utf8'), { simd: true });
  try {
    mod.validate();
    return new Uint8Array(mod.toBinary({ log: false, write_debug_names: true }).buffer);
  } finally {
    mod.destroy();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const bin = await assembleKernels();
  const tmp = `${WASM_FILE}.tmp-${process.pid}`;
  await fs.writeFile(tmp, bin);
  await fs.rename(tmp, WASM_FILE);
  process.stdout.write(`${WASM_FILE}: ${bin.length} bytes\n`);
}
