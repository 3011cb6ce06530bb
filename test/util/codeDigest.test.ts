import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { codeDigest } from '../../src/util/codeDigest.js';
import { EVALUATOR_VERSION } from '../../src/eval/evaluate.js';
import { ENGINE_CODE } from '../../src/merge/codeVersion.js';

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'digest-'));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  return root;
}

describe('codeDigest', () => {
  const files = { 'a/x.ts': 'export const x = 1;\n', 'a/sub/y.ts': 'export const y = 2;\n', 'a/README.md': 'notes', 'b.ts': 'b' };

  it('covers the .ts files of folders and listed files, in a fixed order', () => {
    const r1 = tree(files);
    const r2 = tree(Object.fromEntries(Object.entries(files).reverse()));
    expect(codeDigest(['a', 'b.ts'], r1)).toBe(codeDigest(['b.ts', 'a'], r2));
    expect(codeDigest(['a'], r1)).not.toBe(codeDigest(['a', 'b.ts'], r1));
  });

  it('changes when a source changes or moves, not when a non-source file does', () => {
    const base = codeDigest(['a'], tree(files));
    expect(codeDigest(['a'], tree({ ...files, 'a/sub/y.ts': 'export const y = 3;\n' }))).not.toBe(base);
    expect(codeDigest(['a'], tree({ 'a/x.ts': files['a/x.ts'], 'a/sub/z.ts': files['a/sub/y.ts'] }))).not.toBe(base);
    expect(codeDigest(['a'], tree({ ...files, 'a/README.md': 'other notes' }))).toBe(base);
  });

  it('refuses an entry that does not exist', () => {
    expect(() => codeDigest(['missing'], tree(files))).toThrow(/missing/);
  });

  it('keys the evaluator and the merge engine by their own sources', () => {
    expect(EVALUATOR_VERSION).toMatch(/^eval-[0-9a-f]{16}$/);
    expect(ENGINE_CODE).toMatch(/^engine-[0-9a-f]{16}$/);
  });
});
