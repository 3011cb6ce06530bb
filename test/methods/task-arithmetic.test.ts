import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../../src/kernels/types.js';
import { getMethod, listMethods } from '../../src/methods/registry.js';
import { TASK_ARITHMETIC_FAMILY } from '../../src/methods/task-arithmetic.js';
import { UserError } from '../../src/util/errors.js';
import { BACKENDS, expectClose, randn } from '../kernels/backends.js';
import { f32, input } from './helpers.js';
import { type RefConfig, type RefModel, refTaskArithmetic } from './reference.js';

for (const backend of BACKENDS) {
  describe(`task-arithmetic family (${backend.label})`, () => {
    let k: Kernels;
    beforeAll(async () => {
      k = await backend.make();
    });
    afterAll(async () => {
      await k.dispose();
    });

    const base = f32(1, 2, 3, 4);
    const a = f32(2, 2, 2, 2); // d = 1 0 -1 -2
    const b = f32(0, 4, 3, 4); // d = -1 2 0 0

    it('task_arithmetic by hand: normalize off (default), on, lambda', async () => {
      const m = getMethod('task_arithmetic');
      const models = [
        { ref: 'a', data: a, params: { weight: 0.5 } },
        { ref: 'b', data: b, params: { weight: 1 } },
      ];
      // mixed = 0.5 d_a + d_b = -0.5 2 -0.5 -1
      let r = await m.mergeTensor(input(k, base, [4], models));
      expectClose(r.data, [0.5, 4, 2.5, 3]);
      r = await m.mergeTensor(input(k, base, [4], models, { normalize: true }));
      expectClose(r.data, [1 - 0.5 / 1.5, 2 + 2 / 1.5, 3 - 0.5 / 1.5, 4 - 1 / 1.5]);
      r = await m.mergeTensor(input(k, base, [4], models, { lambda: 2 }));
      expectClose(r.data, [0, 6, 2, 2]);
      r = await m.mergeTensor(input(k, base, [4], models, { normalize: true, lambda: 0.5 }));
      expectClose(r.data, [1 - 0.25 / 1.5, 2 + 1 / 1.5, 3 - 0.25 / 1.5, 4 - 0.5 / 1.5]);
      // Weights summing to ~0: divisor replaced by 1.
      r = await m.mergeTensor(input(k, base, [4], [
        { ref: 'a', data: a, params: { weight: 1 } },
        { ref: 'b', data: b, params: { weight: -1 } },
      ], { normalize: true }));
      expectClose(r.data, [1 + 2, 2 - 2, 3 - 1, 4 - 2]);
    });

    it('fills diagnostics from the fused pass', async () => {
      const r = await getMethod('task_arithmetic').mergeTensor(input(k, base, [4], [
        { ref: 'a', data: a, params: { weight: 0.5 } },
        { ref: 'b', data: b, params: { weight: 1 } },
      ]));
      const dg = r.diagnostics!;
      expect(dg.layer).toBe(3);
      expect(dg.numel).toBe(4);
      expect(dg.taskVectorNorm.a).toBeCloseTo(Math.sqrt(6), 5);
      expect(dg.taskVectorNorm.b).toBeCloseTo(Math.sqrt(5), 5);
      expect(dg.cosine['a|b']).toBeCloseTo(-1 / Math.sqrt(30), 5);
      // e_a = .5 0 -.5 -1, e_b = -1 2 0 0: opposite signs only at element 0.
      expect(dg.signConflict).toBeCloseTo(0.25, 6);
      expect(dg.keptFraction).toEqual({ a: 1, b: 1 });
      expect(dg.mergedDeltaNorm).toBeCloseTo(Math.sqrt(0.25 + 4 + 0.25 + 1), 5);
      expect(dg.mergedDeltaRelToParent.a).toBeCloseTo(Math.sqrt(5.5) / Math.sqrt(6), 5);
    });

    it('ties by hand: top-k per model, sign election, normalized by matching weights', async () => {
      const base0 = f32(0, 0, 0, 0);
      const x1 = f32(3, -1, 0.5, -2);
      const x2 = f32(-1, -4, 2, 0.1);
      const r = await getMethod('ties').mergeTensor(input(k, base0, [4], [
        { ref: 'x1', data: x1, params: { weight: 1, density: 0.5 } },
        { ref: 'x2', data: x2, params: { weight: 0.5, density: 0.5 } },
      ]));
      // x1 keeps 3, -2 -> [3,0,0,-2]; x2 keeps -4, 2 -> [0,-4,2,0]; e2 = [0,-2,1,0]
      // el0: + (3): 3/1. el1: - : -2/0.5 = -4. el2: + : 1/0.5 = 2. el3: - : -2/1.
      expectClose(r.data, [3, -4, 2, -2]);
      expect(r.diagnostics!.keptFraction).toEqual({ x1: 0.5, x2: 0.5 });
    });

    it('ties: ties in |d| keep the lower index; k = 0 is an error naming model and tensor', async () => {
      const base0 = f32(0, 0, 0, 0);
      const r = await getMethod('ties').mergeTensor(input(k, base0, [4], [
        { ref: 'x', data: f32(1, -1, 1, -1), params: { weight: 1, density: 0.5 } },
      ]));
      expectClose(r.data, [1, -1, 0, 0]);
      const bad = getMethod('ties').mergeTensor(input(k, base0, [4], [{ ref: 'x', data: f32(1, 2, 3, 4), params: { weight: 1, density: 0.2 } }]));
      await expect(bad).rejects.toThrow(UserError);
      await expect(bad).rejects.toThrow(/"x".*model\.layers\.3\.mlp\.down_proj\.weight/);
    });

    it('breadcrumbs by hand, including n_top = 0 (mergekit would zero the tensor)', async () => {
      const base0 = new Float32Array(10);
      const x = f32(1, -2, 3, -4, 5, -6, 7, -8, 9, -10);
      // gamma 0.1 -> n_top 1; density 0.5 -> n_bot 4: keep |d| sorted positions [4, 9) = 5..9
      let r = await getMethod('breadcrumbs').mergeTensor(input(k, base0, [10], [
        { ref: 'x', data: x, params: { weight: 1, density: 0.5, gamma: 0.1 } },
      ]));
      expectClose(r.data, [0, 0, 0, 0, 5, -6, 7, -8, 9, 0]);
      // gamma 0.01 -> n_top 0: keep [5, 10)
      r = await getMethod('breadcrumbs').mergeTensor(input(k, base0, [10], [{ ref: 'x', data: x, params: { weight: 1, density: 0.5 } }]));
      expectClose(r.data, [0, 0, 0, 0, 0, -6, 7, -8, 9, -10]);
      // density 0.95, gamma 0.2: n_bot = 10 - 9 - 2 < 0 -> n_top = 1, n_bot = 0: keep [0, 9)
      r = await getMethod('breadcrumbs').mergeTensor(input(k, base0, [10], [{ ref: 'x', data: x, params: { weight: 1, density: 0.95, gamma: 0.2 } }]));
      expectClose(r.data, [1, -2, 3, -4, 5, -6, 7, -8, 9, 0]);
    });

    it('della: epsilon outside the allowed band is an error', async () => {
      const base0 = new Float32Array(8);
      for (const [density, epsilon] of [[0.1, 0.15], [0.9, 0.15], [0.15, 0.15]]) {
        await expect(getMethod('della').mergeTensor(input(k, base0, [8], [
          { ref: 'x', data: f32(1, 2, 3, 4, 5, 6, 7, 8), params: { weight: 1, density, epsilon } },
        ]))).rejects.toThrow(/epsilon/);
      }
      // density 1 returns the delta untouched, no epsilon check.
      const r = await getMethod('della').mergeTensor(input(k, base0, [8], [{ ref: 'x', data: f32(1, 2, 3, 4, 5, 6, 7, 8), params: { weight: 2, density: 1 } }]));
      expectClose(r.data, [1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it('embedding tensors are cropped to the base; other mismatches are skipped with a warning', async () => {
      const base2 = f32(1, 1, 1, 1, 1, 1); // [3, 2]
      const bigger = f32(2, 2, 9, 3, 3, 9, 4, 4, 9, 7, 7, 7); // [4, 3]
      const r = await getMethod('task_arithmetic').mergeTensor(input(k, base2, [3, 2], [
        { ref: 'big', data: bigger, shape: [4, 3], params: { weight: 1 } },
      ], {}, { tensor: 'model.embed_tokens.weight', isEmbedding: true }));
      expectClose(r.data, [2, 2, 3, 3, 4, 4]);
      expect(r.warnings.join()).toMatch(/big/);
      const s = await getMethod('task_arithmetic').mergeTensor(input(k, base2, [3, 2], [
        { ref: 'big', data: bigger, shape: [4, 3], params: { weight: 1 } },
        { ref: 'ok', data: f32(2, 2, 2, 2, 2, 2), params: { weight: 1 } },
      ]));
      expectClose(s.data, [2, 2, 2, 2, 2, 2]);
      expect(s.warnings).toHaveLength(1);
      expect(s.warnings[0]).toMatch(/skipping big.*\[4,3\].*\[3,2\]/);
      const none = await getMethod('ties').mergeTensor(input(k, base2, [3, 2], [{ ref: 'big', data: bigger, shape: [4, 3], params: { weight: 1 } }]));
      expectClose(none.data, base2);
      expect(none.warnings.join('\n')).toMatch(/output is the base/);
    });

    it('every family member matches the naive reference on random data (normalize on/off, rescale rules, lambda)', async () => {
      const shape = [16, 25];
      const N = 400;
      const base0 = randn(N, 100);
      const xs = [101, 102, 103].map((s, i) => Float32Array.from(randn(N, s, 0.05 * (i + 1)), (v, j) => base0[j] + v));
      for (const cfg of TASK_ARITHMETIC_FAMILY) {
        for (const normalize of [false, true]) {
          for (const rescale of ['l1', 'inverse_density', 'none'] as const) {
            const params = [
              { weight: 0.6, density: 0.5, gamma: 0.05, epsilon: 0.1 },
              { weight: 0.3, density: 0.7, gamma: 0.02, epsilon: 0.2 },
              { weight: -0.2, density: 0.35, gamma: 0.1, epsilon: 0.3 },
            ];
            const refs = ['m0', 'm1', 'm2'];
            const global = { normalize, rescale, lambda: 0.8 };
            const r = await getMethod(cfg.name).mergeTensor(input(k, base0, shape,
              xs.map((x, i) => ({ ref: refs[i], data: x, params: params[i] })), global));
            const c: RefConfig = {
              sparsifier: cfg.sparsifier, consensus: cfg.consensus, normalize, rescale, lambda: 0.8,
              seed: 42, stage: 'stage1', tensor: 'model.layers.3.mlp.down_proj.weight', shape,
            };
            const models: RefModel[] = xs.map((x, i) => ({ ref: refs[i], x, ...params[i] }));
            const want = refTaskArithmetic(base0, models, c);
            try {
              expectClose(r.data, want, 2e-5);
            } catch (e) {
              throw new Error(`${cfg.name} normalize=${normalize} rescale=${rescale}: ${(e as Error).message}`);
            }
          }
        }
      }
    });

    it('defaults follow the spec table', async () => {
      for (const c of TASK_ARITHMETIC_FAMILY) {
        const g = getMethod(c.name).globalParams.parse({});
        expect(g).toEqual({
          normalize: c.normalizeDefault, rescale: c.rescaleDefault ? 'l1' : 'none', lambda: 1, int8_mask: false,
        });
      }
      const m = getMethod('dare_ties').modelParams;
      expect(m.parse({ weight: 0.5 })).toEqual({ weight: 0.5, density: 1 });
      expect(() => m.parse({})).toThrow(/missing required parameter weight/);
      expect(() => m.parse({ weight: 1, density: 0 })).toThrow(/density must be in \(0, 1\]/);
      expect(() => m.parse({ weight: 1, density: 1.5 })).toThrow(/density/);
      expect(getMethod('breadcrumbs').modelParams.parse({ weight: 1 })).toEqual({ weight: 1, density: 1, gamma: 0.01 });
      expect(getMethod('della_linear').modelParams.parse({ weight: 1 })).toEqual({ weight: 1, density: 1, epsilon: 0.15 });
      expect(getMethod('ties').globalParams.parse({ rescale: true }).rescale).toBe('l1');
      expect(getMethod('ties').globalParams.parse({ rescale: 'inverse_density', int8_mask: true }).rescale).toBe('inverse_density');
      expect(getMethod('dare_ties').rescaleRule({ rescale: false })).toBe('none');
      // int8_mask changes nothing.
      const models: Array<{ ref: string; data: Float32Array; params: Record<string, number> }> = [{ ref: 'a', data: a, params: { weight: 0.5, density: 0.5 } }, { ref: 'b', data: b, params: { weight: 1 } }];
      const r1 = await getMethod('ties').mergeTensor(input(k, base, [4], models, { int8_mask: true }));
      const r0 = await getMethod('ties').mergeTensor(input(k, base, [4], models));
      expect(Array.from(r1.data)).toEqual(Array.from(r0.data));
    });

    it('a model with no weight fails with the model and parameter named', async () => {
      await expect(getMethod('task_arithmetic').mergeTensor(input(k, base, [4], [{ ref: 'org/chat', data: a }])))
        .rejects.toThrow(/stage stage1: model "org\/chat".*missing required parameter weight/);
    });
  });
}

describe('registry', () => {
  it('lists every method of the spec and names the known ones for an unknown name', () => {
    expect(listMethods().sort()).toEqual([
      'arcee_fusion', 'breadcrumbs', 'breadcrumbs_ties', 'dare_linear', 'dare_ties', 'della', 'della_linear',
      'karcher', 'linear', 'model_stock', 'multislerp', 'nearswap', 'nuslerp', 'passthrough', 'ram', 'ramplus_tl',
      'sce', 'slerp', 'task_arithmetic', 'ties',
    ]);
    expect(() => getMethod('dare-ties')).toThrow(UserError);
    expect(() => getMethod('dare-ties')).toThrow(/known methods: .*dare_ties/);
  });
});
