import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/checkpoint/reader.js';

// Written by the reference safetensors implementation (test/fixtures/checkpoint/make-reference.py).
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/checkpoint/reference');

describe('file written by the reference implementation', () => {
  it('reads every dtype, the zero-size tensor and the metadata-bearing header', async () => {
    const ck = await openCheckpoint(dir);
    try {
      expect(ck.config).toBeNull();
      expect(ck.metadata).toEqual({ format: 'pt', note: 'written by the reference implementation' });
      // Data order (the reference writer sorts by alignment, then name), not alphabetical.
      expect(ck.tensorNames()).toEqual([
        'position_ids', 'lm_head.bias', 'empty', 'model.embed_tokens.weight', 'counts', 'model.norm.weight', 'byte_table', 'attention_mask',
      ]);
      expect(Array.from(await ck.readF32('model.embed_tokens.weight'))).toEqual(Array.from({ length: 12 }, (_, i) => (i - 5.5) / 4));
      expect(ck.info('model.embed_tokens.weight').shape).toEqual([3, 4]);
      expect(Array.from(await ck.readF32('model.norm.weight'))).toEqual([1, -0.5, 65504, 2 ** -14, 2 ** -24]);
      const bias = await ck.readF32('lm_head.bias');
      expect(bias[0]).toBe(Math.fround(0.1));
      expect(bias[1]).toBe(-Infinity); // -1e300 does not fit f32
      expect(bias[2]).toBe(3);
      expect((await ck.readF32('empty')).length).toBe(0);
      const ids = await ck.readRaw('position_ids');
      expect(ids.shape).toEqual([1, 4]);
      expect(Array.from(new BigInt64Array(ids.bytes.buffer, ids.bytes.byteOffset, 4))).toEqual([0n, 1n, 2n, -9007199254740993n]);
      expect(Array.from((await ck.readRaw('attention_mask')).bytes)).toEqual([1, 0, 1]);
      expect(Array.from((await ck.readRaw('byte_table')).bytes)).toEqual([255, 0, 7]);
      const counts = await ck.readRaw('counts');
      expect(Array.from(new Int32Array(counts.bytes.buffer, counts.bytes.byteOffset, 2))).toEqual([-2, 2147483647]);
      expect(ck.info('attention_mask').dtype).toBe('BOOL');
    } finally {
      await ck.close();
    }
  });
});
