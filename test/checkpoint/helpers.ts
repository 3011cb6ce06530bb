import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { UserError } from '../../src/util/errors.js';

const made: string[] = [];
// Registered at import, so it runs after the importing test file.
afterAll(async () => {
  await Promise.all(made.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
});

export async function tmpDir(prefix = 'ckpt-'): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), `mergelab-${prefix}`));
  made.push(d);
  return d;
}

/** Build safetensors bytes from a header object (possibly malformed) and a data section. */
export function rawSafetensors(header: unknown, data: Uint8Array, opts: { headerLen?: bigint } = {}): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, opts.headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Await `p`, expect a UserError, and return its message. */
export async function userErrorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof UserError)) throw new Error(`expected a UserError, got ${String(e)}`);
    return e.message;
  }
  throw new Error('expected a UserError, but it succeeded');
}
