import { describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../src/zoo/model.js';
import { installFastTile, tileInto } from '../../src/eval/backends/fast-tile.js';

/** Reference tile by index arithmetic. */
function refTile(src: Float32Array, shape: number[], reps: number[]): Float32Array {
  const out = shape.map((s, i) => s * reps[i]);
  const total = out.reduce((a, b) => a * b, 1);
  const res = new Float32Array(total);
  for (let flat = 0; flat < total; flat++) {
    let rem = flat;
    let srcIdx = 0;
    let stride = 1;
    const idx: number[] = [];
    for (let d = out.length - 1; d >= 0; d--) {
      idx[d] = rem % out[d];
      rem = Math.floor(rem / out[d]);
    }
    for (let d = out.length - 1; d >= 0; d--) {
      srcIdx += (idx[d] % shape[d]) * stride;
      stride *= shape[d];
    }
    res[flat] = src[srcIdx];
  }
  return res;
}

const cases: Array<[number[], number[]]> = [[[3], [4]], [[2, 3], [1, 2]], [[2, 3], [3, 1]], [[4, 1, 6], [1, 3, 1]], [[2, 3, 4, 5], [2, 1, 3, 2]], [[1, 1], [5, 7]], [[2, 2], [1, 1]]];

describe('block-copy tile', () => {
  it('matches the index-arithmetic definition', () => {
    for (const [shape, reps] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const src = Float32Array.from({ length: n }, (_, i) => i + 0.5);
      const dst = new Float32Array(n * reps.reduce((a, b) => a * b, 1));
      tileInto(src, shape, reps, dst);
      expect(Array.from(dst)).toEqual(Array.from(refTile(src, shape, reps)));
    }
  });
  it('installed as the wasm kernel, gives what the stock kernel gives', async () => {
    const backend = await initBackend();
    const inputs = cases.map(([shape]) => tf.randomNormal(shape, 0, 1, 'float32', 3));
    const stock = cases.map(([, reps], i) => Array.from(tf.tile(inputs[i], reps).dataSync()));
    const ints = tf.tensor([[1, 2], [3, 4]], undefined, 'int32');
    const stockInt = Array.from(tf.tile(ints, [2, 3]).dataSync());
    installFastTile();
    cases.forEach(([, reps], i) => expect(Array.from(tf.tile(inputs[i], reps).dataSync())).toEqual(stock[i]));
    expect(Array.from(tf.tile(ints, [2, 3]).dataSync())).toEqual(stockInt);
    expect(['wasm', 'cpu']).toContain(backend);
  });
});
