/**
 * The eight methods of mergekit's current main that its 0.1.4 lacked, on small cases worked by
 * hand (the numbers in the comments), then on random tensors against the literal float64 versions
 * in newer-reference.ts. Each case names the mergekit function it follows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../../src/kernels/types.js';
import { fusionThreshold } from '../../src/methods/arcee-fusion.js';
import { karcherCoefficients } from '../../src/methods/karcher.js';
import { multislerpCoefficients } from '../../src/methods/multislerp.js';
import { nuslerpLayout } from '../../src/methods/nuslerp.js';
import { getMethod, listMethods } from '../../src/methods/registry.js';
import { sceKeepCount, sceWeights } from '../../src/methods/sce.js';
import { UserError } from '../../src/util/errors.js';
import { BACKENDS, expectClose, randn } from '../kernels/backends.js';
import { f32, input } from './helpers.js';
import { refArceeFusion, refKarcher, refMultislerp, refNearswap, refNuslerp, refRam, refSce } from './newer-reference.js';

const NEW = ['sce', 'nuslerp', 'multislerp', 'karcher', 'nearswap', 'arcee_fusion', 'ram', 'ramplus_tl'];

describe('registry', () => {
  it('finds every method of mergekit main (ram and ramplus_tl are in merge_methods/ram.py of the snapshot)', () => {
    for (const m of NEW) expect(listMethods()).toContain(m);
    expect(listMethods()).toHaveLength(20);
  });
  it('declares base rules and model counts as mergekit enforces them', () => {
    const rule = (n: string) => {
      const m = getMethod(n);
      return [m.needsBase, m.optionalBase, m.models.min, m.models.max];
    };
    expect(rule('sce')).toEqual([true, 'listed', 1, Infinity]);
    expect(rule('ram')).toEqual([true, 'listed', 1, Infinity]);
    expect(rule('ramplus_tl')).toEqual([true, 'listed', 1, Infinity]);
    expect(rule('nearswap')).toEqual([true, 'listed', 1, 1]);
    expect(rule('arcee_fusion')).toEqual([true, 'listed', 1, 1]);
    expect(rule('nuslerp')).toEqual([false, 'reference', 2, 2]);
    expect(rule('multislerp')).toEqual([false, 'reference', 1, Infinity]);
    expect(rule('karcher')).toEqual([false, 'listed', 1, Infinity]);
  });
  it('fills mergekit defaults and rejects missing required parameters', () => {
    const parse = (n: string, kind: 'globalParams' | 'modelParams', v: unknown) => getMethod(n)[kind].safeParse(v);
    expect(parse('sce', 'globalParams', {}).data).toEqual({ select_topk: 1, int8_mask: false });
    expect(parse('nuslerp', 'globalParams', {}).data).toEqual({ nuslerp_row_wise: false, nuslerp_flatten: true });
    expect(parse('multislerp', 'globalParams', {}).data).toEqual({ normalize_weights: true, eps: 1e-8 });
    expect(parse('karcher', 'globalParams', {}).data).toEqual({ max_iter: 10, tol: 1e-5 });
    expect(parse('ram', 'globalParams', {}).data).toEqual({ epsilon: 1e-5 });
    expect(parse('ramplus_tl', 'globalParams', {}).data).toEqual({ r: 0.1, alpha: 0.2, epsilon: 1e-5 });
    expect(parse('nearswap', 'globalParams', {}).success).toBe(false);
    expect(parse('nuslerp', 'modelParams', {}).success).toBe(false);
    expect(parse('multislerp', 'modelParams', {}).success).toBe(false);
    expect(parse('karcher', 'globalParams', { max_iter: 2.5 }).success).toBe(false);
  });
});

describe('pure parts', () => {
  it('sce keeps int(nonzero * density) in float32 and weighs by mean squares (sce_mask, sce_weight)', () => {
    expect(sceKeepCount(4, 0.5)).toBe(2);
    expect(sceKeepCount(10, 0.29)).toBe(2);
    expect(sceWeights([14.25, 16.25], 4)).toEqual([57 / 122, 65 / 122]);
    // Sum of mean squares below 1e-6: equal weights whatever the sizes.
    expect(sceWeights([1e-8, 9e-8], 2)).toEqual([0.5, 0.5]);
  });
  it('arcee_fusion threshold: median + 1.5 IQR at mergekit quantile indices', () => {
    // n = 5: indices trunc(0.5*4) = 2, trunc(0.25*4) = 1, trunc(0.75*4) = 3 -> 3 + 1.5 (4 - 2) = 6
    expect(fusionThreshold(f32(5, 1, 4, 2, 3))).toBe(6);
    // n = 4: indices 1 (1.5), 0 (0.75), 2 (2.25) of [1, 2, 10, 20] -> 2 + 1.5 (10 - 1) = 15.5
    expect(fusionThreshold(f32(20, 1, 10, 2))).toBe(15.5);
  });
  it('nuslerp vectors: flattened, along the last dimension, or along the first with row_wise', () => {
    expect(nuslerpLayout([4, 3], true, false)).toEqual({ rows: 1, cols: 12, along: 'rows' });
    expect(nuslerpLayout([4, 3], false, false)).toEqual({ rows: 4, cols: 3, along: 'rows' });
    expect(nuslerpLayout([4, 3], false, true)).toEqual({ rows: 4, cols: 3, along: 'cols' });
    expect(nuslerpLayout([2, 3, 5], false, true)).toEqual({ rows: 2, cols: 15, along: 'cols' });
    expect(nuslerpLayout([7], false, true)).toEqual({ rows: 1, cols: 7, along: 'rows' });
  });
  it("multislerp: the tangent step sums to zero, so the result is the weighted unit mean's direction times the weighted mean norm", () => {
    // v1 = (1, 0), v2 = (0, 2), weights 0.75, 0.25: direction (0.75, 0.25)/|.|, scale 0.75*1 + 0.25*2 = 1.25.
    const c = multislerpCoefficients([1, 0, 0, 4], [0.75, 0.25], 1e-8);
    expect(c.ok).toBe(true);
    const len = Math.hypot(0.75, 0.25);
    if (c.ok) expectClose([c.coeffs[0] * 1, c.coeffs[1] * 2], [(1.25 * 0.75) / len, (1.25 * 0.25) / len], 1e-7);
    expect(multislerpCoefficients([1, -1, -1, 1], [0.5, 0.5], 1e-8)).toEqual({ ok: true, coeffs: [0.5, 0.5] });
    expect(multislerpCoefficients([1, -1, 0, -1, 1, 0, 0, 0, 0], [1 / 3, 1 / 3, 1 / 3], 1e-8).ok).toBe(false);
  });
  it('karcher: the mean of angles 0, 90 and 30 degrees on the circle is 40 degrees; no step leaves the Euclidean start', () => {
    const r = (deg: number) => (deg * Math.PI) / 180;
    const xs = [[1, 0], [0, 1], [Math.cos(r(30)), Math.sin(r(30))]];
    const G = xs.flatMap((a) => xs.map((b) => a[0] * b[0] + a[1] * b[1]));
    const out = (coeffs: number[]) => [0, 1].map((d) => coeffs.reduce((s, c, i) => s + c * xs[i][d], 0));
    const k = karcherCoefficients(G, 10, 1e-5);
    expectClose(out(k.coeffs), [Math.cos(r(40)), Math.sin(r(40))], 1e-9);
    expect(k.iterations).toBeLessThanOrEqual(3);
    // max_iter 0: the normalised arithmetic mean, at atan2(1.5, 1 + cos 30).
    const a = Math.atan2(1.5, 1 + Math.cos(r(30)));
    expectClose(out(karcherCoefficients(G, 0, 1e-5).coeffs), [Math.cos(a), Math.sin(a)], 1e-12);
  });
});

for (const backend of BACKENDS) {
  describe(`newer mergekit methods (${backend.label})`, () => {
    let k: Kernels;
    beforeAll(async () => {
      k = await backend.make();
    });
    afterAll(async () => {
      await k.dispose();
    });
    const run = async (method: string, base: Float32Array | null, shape: number[], models: Array<{ ref: string; data: Float32Array; params?: Record<string, number> }>, global: Record<string, unknown> = {}) =>
      (await getMethod(method).mergeTensor(input(k, base, shape, models, global))).data;

    it('nearswap by hand (nearswap_merge): |d| 0.05, 0.2, 0.5, 0 with t = 0.1 give weights 1, 0.5, 0.2, 1', async () => {
      const out = await run('nearswap', f32(0, 0, 1, 2), [4], [{ ref: 'b', data: f32(0.05, 0.2, 1.5, 2) }], { t: 0.1 });
      expectClose(out, [0.05, 0.1, 1.1, 2], 1e-7);
      await expect(run('nearswap', f32(0), [1], [{ ref: 'b', data: f32(1) }])).rejects.toThrow(/missing required parameter t/);
      await expect(run('nearswap', f32(0), [1], [{ ref: 'b', data: f32(1) }, { ref: 'c', data: f32(1) }], { t: 1 })).rejects.toThrow(UserError);
    });

    it('arcee_fusion by hand (ArceeFusionMergeTask): one row, scores k|d|, threshold 0.3k + 1.5 (0.4k - 0.2k) = 0.6k keeps only |d| = 2', async () => {
      const base = f32(1, 1, 1, 1, 1);
      const out = await run('arcee_fusion', base, [1, 5], [{ ref: 'b', data: f32(1.1, 0.8, 1.3, 0.6, 3) }]);
      expect(Array.from(out)).toEqual([1, 1, 1, 1, 3]);
      // Two rows: the second row is unchanged, so its KL and scores are 0.
      const r = await getMethod('arcee_fusion').mergeTensor(input(k, f32(0, 0, 0, 0), [2, 2], [{ ref: 'b', data: f32(Math.log(3), 0, 0, 0) }]));
      // Scores [ln3 * KL, 0, 0, 0]: median, q1 and q3 are 0, threshold 0: every element is taken from the model.
      expect(Array.from(r.data)).toEqual([Math.fround(Math.log(3)), 0, 0, 0]);
      expect(r.diagnostics!.keptFraction.b).toBe(1);
    });

    it('sce by hand (sce_merge): weights 57/122 and 65/122 from mean squares, sign election on the plain sum', async () => {
      // d1 = (1, -2, 3, 0.5), d2 = (3, 2, -1, 1.5); mean squares 14.25/4 and 16.25/4.
      const base = f32(0, 0, 0, 0);
      const models = [{ ref: 'a', data: f32(1, -2, 3, 0.5) }, { ref: 'b', data: f32(3, 2, -1, 1.5) }];
      // j0 both agree: (57 + 3*65)/122; j1 sums to 0, elects +: only b; j2 elects +: only a; j3 both.
      expectClose(await run('sce', base, [4], models), [252 / 122, 2, 3, (0.5 * 57 + 1.5 * 65) / 122], 1e-6);
    });

    it('sce with select_topk 0.5 (sce_mask): variances 9, 4, 5.0625, 0.25 keep positions 0 and 2', async () => {
      const base = f32(0, 0, 0, 0);
      const models = [{ ref: 'a', data: f32(1, -2, 3, 0.5) }, { ref: 'b', data: f32(7, 2, -1.5, 1.5) }];
      // Masked d1 = (1, 0, 3, 0), d2 = (7, 0, -1.5, 0): mean squares 2.5 and 12.8125, weights 8/49 and 41/49.
      expectClose(await run('sce', base, [4], models, { select_topk: 0.5 }), [(8 + 41 * 7) / 49, 0, 3, 0], 1e-6);
      // select_topk 0 erases everything; a single model has zero variance everywhere, so selection keeps nothing.
      expectClose(await run('sce', base, [4], models, { select_topk: 0 }), [0, 0, 0, 0]);
      expectClose(await run('sce', base, [4], models.slice(0, 1), { select_topk: 0.9 }), [0, 0, 0, 0]);
      // Task vectors of ~1e-4: the mean squares sum below 1e-6, so mergekit weighs them equally.
      expectClose(await run('sce', f32(0, 0), [2], [{ ref: 'a', data: f32(1e-4, 0) }, { ref: 'b', data: f32(3e-4, 0) }]), [2e-4, 0], 1e-6);
    });

    it('ram and ramplus_tl by hand (ram_merge, ramplus_tl_merge)', async () => {
      const base = f32(0, 0, 0, 0, 0, 0);
      // j0 only a; j1 all three; j2 only c; j3 a below epsilon; j4 b and c; j5 only a.
      const models = [
        { ref: 'a', data: f32(0.5, 0.2, 0, 1e-6, 0, 0.4) },
        { ref: 'b', data: f32(0, 0.4, 0, 0, -0.3, 0) },
        { ref: 'c', data: f32(0, 0.6, 0.1, 0, -0.1, 0) },
      ];
      expectClose(await run('ram', base, [6], models), [0.5, 0.4, 0.1, 0, -0.2, 0.4], 1e-6);
      // a: 2 unique, 1 shared, rho 0.5, lambda 1 + 0.5*0.5; c: 1 unique, 2 shared, rho clamped to 1, lambda 1.5.
      expectClose(await run('ramplus_tl', base, [6], models, { r: 0.5, alpha: 1 }), [0.625, 0.4, 0.15, 0, -0.2, 0.5], 1e-6);
      // Defaults r 0.1, alpha 0.2: every rho is clamped to 0.2, lambda 1.02.
      expectClose(await run('ramplus_tl', base, [6], models), [0.51, 0.4, 0.102, 0, -0.2, 0.408], 1e-6);
      // A larger epsilon leaves b's -0.3 alone at j4 once c's 0.1 no longer counts.
      expectClose(await run('ram', base, [6], models, { epsilon: 0.15 }), [0.5, 0.4, 0, 0, -0.3, 0.4], 1e-6);
    });

    it('nuslerp by hand (nuslerp): flattened, per row, per column, weights, and task vectors against a base', async () => {
      const a = f32(1, 0, 2, 0);
      const b = f32(0, 1, 4, 0);
      const two = (wa = 1, wb = 1) => [{ ref: 'a', data: a, params: { weight: wa } }, { ref: 'b', data: b, params: { weight: wb } }];
      // Flattened: cos = 8 / sqrt(5 * 17), t = 0.5: both coefficients sin(theta/2) / sin(theta).
      const th = Math.acos(8 / Math.sqrt(85));
      const c = Math.sin(th / 2) / Math.sin(th);
      expectClose(await run('nuslerp', null, [2, 2], two()), [c, c, 6 * c, 0], 1e-6);
      // Per row: row 0 orthogonal -> sin(pi/4) each; row 1 parallel -> lerp (3, 0).
      expectClose(await run('nuslerp', null, [2, 2], two(), { nuslerp_flatten: false }), [Math.SQRT1_2, Math.SQRT1_2, 3, 0], 1e-6);
      // Per column (row_wise): column 0 (1, 2) vs (0, 4), cos 2/sqrt5; column 1 is (0, 0) vs (1, 0): a zero vector
      // normalises to 0, so theta = pi/2 and the result is sin(pi/4) times (1, 0).
      const t2 = Math.acos(2 / Math.sqrt(5));
      const c2 = Math.sin(t2 / 2) / Math.sin(t2);
      expectClose(await run('nuslerp', null, [2, 2], two(), { nuslerp_flatten: false, nuslerp_row_wise: true }), [c2, Math.SQRT1_2, 6 * c2, 0], 1e-6);
      // Weights 1 and 3: t = 0.75 on the orthogonal row 0: sin(pi/8), sin(3pi/8).
      expectClose((await run('nuslerp', null, [2, 2], two(1, 3), { nuslerp_flatten: false })).subarray(0, 2), [Math.sin(Math.PI / 8), Math.sin((3 * Math.PI) / 8)], 1e-6);
      // Weights summing to 0: t = 0.5, as mergekit does instead of dividing by zero.
      expectClose(await run('nuslerp', null, [2, 2], two(-0.5, 0.5), { nuslerp_flatten: false }), [Math.SQRT1_2, Math.SQRT1_2, 3, 0], 1e-6);
      // With a base, the task vectors are interpolated and added back.
      const base = f32(1, 1, 1, 1);
      const shifted = [{ ref: 'a', data: f32(2, 1, 3, 1), params: { weight: 1 } }, { ref: 'b', data: f32(1, 2, 5, 1), params: { weight: 1 } }];
      expectClose(await run('nuslerp', base, [2, 2], shifted, { nuslerp_flatten: false }), [1 + Math.SQRT1_2, 1 + Math.SQRT1_2, 4, 1], 1e-6);
      await expect(run('nuslerp', null, [2, 2], [{ ref: 'a', data: a }, { ref: 'b', data: b }])).rejects.toThrow(/missing required parameter weight/);
    });

    it('multislerp by hand (multislerp): orthogonal unit vectors, unequal weights and norms, a base, the antipodal fallback', async () => {
      const w = (data: Float32Array, weight: number, ref: string) => ({ ref, data, params: { weight } });
      expectClose(await run('multislerp', null, [2], [w(f32(1, 0), 1, 'a'), w(f32(0, 1), 1, 'b')]), [Math.SQRT1_2, Math.SQRT1_2], 1e-6);
      const s3 = 1 / Math.sqrt(3);
      expectClose(await run('multislerp', null, [3], [w(f32(1, 0, 0), 1, 'a'), w(f32(0, 1, 0), 1, 'b'), w(f32(0, 0, 1), 1, 'c')]), [s3, s3, s3], 1e-6);
      const len = Math.hypot(0.75, 0.25);
      const want = [(1.25 * 0.75) / len, (1.25 * 0.25) / len];
      expectClose(await run('multislerp', null, [2], [w(f32(1, 0), 3, 'a'), w(f32(0, 2), 1, 'b')]), want, 1e-6);
      expectClose(await run('multislerp', f32(1, 1), [2], [w(f32(2, 1), 3, 'a'), w(f32(1, 3), 1, 'b')]), [1 + want[0], 1 + want[1]], 1e-6);
      // Antipodal with equal weights: two models fall back to the weighted sum, three are an error.
      expectClose(await run('multislerp', null, [2], [w(f32(1, 0), 1, 'a'), w(f32(-1, 0), 1, 'b')]), [0, 0]);
      await expect(run('multislerp', null, [2], [w(f32(1, 0), 1, 'a'), w(f32(-1, 0), 1, 'b'), w(f32(0, 0), 1, 'c')])).rejects.toThrow(/weighted mean of the unit tensors is zero/);
      await expect(run('multislerp', null, [2], [w(f32(1, 0), 1, 'a'), w(f32(0, 1), -1, 'b')])).rejects.toThrow(/sum to 0/);
      // A single model is returned as it is, base or not.
      expect(Array.from(await run('multislerp', f32(5, 5), [2], [w(f32(1, 2), 1, 'a')]))).toEqual([1, 2]);
    });

    it('karcher by hand (karcher_merge_tensors): slerp midpoint, norms scale, the base joins the mean', async () => {
      expectClose(await run('karcher', null, [2], [{ ref: 'a', data: f32(1, 0) }, { ref: 'b', data: f32(0, 1) }]), [Math.SQRT1_2, Math.SQRT1_2], 1e-6);
      // Norms 2 and 4: same direction, scale (2 + 4) / 2.
      expectClose(await run('karcher', null, [2], [{ ref: 'a', data: f32(2, 0) }, { ref: 'b', data: f32(0, 4) }]), [3 * Math.SQRT1_2, 3 * Math.SQRT1_2], 1e-6);
      // base_model (0, 1) not listed: mergekit adds it to the inputs, so this is the mean of three.
      const r = (deg: number) => (deg * Math.PI) / 180;
      const out = await run('karcher', f32(0, 1), [2], [{ ref: 'a', data: f32(1, 0) }, { ref: 'c', data: f32(Math.cos(r(30)), Math.sin(r(30))) }]);
      expectClose(out, [Math.cos(r(40)), Math.sin(r(40))], 1e-6);
      // A zero tensor is left out of the direction but counts in the mean norm: (1 + 1 + 0) / 3.
      expectClose(await run('karcher', null, [2], [{ ref: 'a', data: f32(1, 0) }, { ref: 'b', data: f32(0, 1) }, { ref: 'z', data: f32(0, 0) }]), [(2 / 3) * Math.SQRT1_2, (2 / 3) * Math.SQRT1_2], 1e-6);
    });

    it('random tensors, 2 and 3 models, agree with the literal float64 versions', async () => {
      const R = 12;
      const C = 20;
      const N = R * C;
      const base = randn(N, 1);
      const xs = [2, 3, 4].map((s, i) => Float32Array.from(randn(N, s, 0.02 * (i + 1)), (v, j) => base[j] + v));
      // Some untouched elements (RAM's inactive, sce's zero variance where all agree).
      for (const x of xs) for (let j = 0; j < N; j += 11) x[j] = base[j];
      const shape = [R, C];
      const models = (n: number, weights = [0.6, 0.3, 0.5]) => xs.slice(0, n).map((data, i) => ({ ref: `m${i}`, data, params: { weight: weights[i] } }));
      for (const n of [2, 3]) {
        expectClose(await run('sce', base, shape, models(n), { select_topk: 0.3 }), refSce(base, xs.slice(0, n), 0.3), 1e-6);
        expectClose(await run('sce', base, shape, models(n)), refSce(base, xs.slice(0, n), 1), 1e-6);
        expectClose(await run('ram', base, shape, models(n), { epsilon: 0.01 }), refRam(base, xs.slice(0, n), 0.01, null), 1e-6);
        expectClose(await run('ramplus_tl', base, shape, models(n), { epsilon: 0.01, r: 0.3, alpha: 0.5 }), refRam(base, xs.slice(0, n), 0.01, { r: 0.3, alpha: 0.5 }), 1e-6);
        expectClose(await run('multislerp', base, shape, models(n)), refMultislerp(xs.slice(0, n), [0.6, 0.3, 0.5].slice(0, n), base), 1e-6);
        expectClose(await run('multislerp', null, shape, models(n)), refMultislerp(xs.slice(0, n), [0.6, 0.3, 0.5].slice(0, n), null), 1e-6);
        expectClose(await run('karcher', null, shape, models(n)), refKarcher(xs.slice(0, n)), 1e-6);
      }
      expectClose(await run('karcher', base, shape, models(2)), refKarcher([...xs.slice(0, 2), base]), 1e-6);
      for (const flatten of [true, false]) {
        for (const rowWise of [false, true]) {
          const g = { nuslerp_flatten: flatten, nuslerp_row_wise: rowWise };
          expectClose(await run('nuslerp', null, shape, models(2)), refNuslerp(xs[0], xs[1], null, shape, [0.6, 0.3], { flatten: true, rowWise: false }), 1e-6);
          expectClose(await run('nuslerp', base, shape, models(2), g), refNuslerp(xs[0], xs[1], base, shape, [0.6, 0.3], { flatten, rowWise }), 1e-6);
        }
      }
      expectClose(await run('nearswap', base, shape, models(1), { t: 0.01 }), refNearswap(base, xs[0], 0.01), 1e-6);
      const fusion = await run('arcee_fusion', base, shape, models(1));
      const ref = refArceeFusion(base, xs[0], shape);
      expectClose(fusion, ref.out, 1e-6);
      expect(ref.kept).toBeGreaterThan(0);
      expect(ref.kept).toBeLessThan(N);
    });
  });
}
