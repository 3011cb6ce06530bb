/**
 * The newer methods end to end: recipes merged by runRecipe from Llama-shaped F32 and BF16
 * checkpoints with 2 and 3 models, every output tensor against the literal float64 versions of
 * mergekit's functions (newer-reference.ts) computed from the stored input values. F32 agrees to
 * float32 rounding; BF16 outputs are within one bf16 step of the exact result (mergekit computes in
 * bf16 and rounds at every step, so it is itself only that close). sce's top-k ties are broken the
 * same way on both sides (lower index first; torch leaves their order undefined).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/checkpoint/reader.js';
import { TypedKernels } from '../../src/kernels/typed.js';
import { runRecipe } from '../../src/merge/engine.js';
import { tmpDir, writeTinyLlama } from '../merge/tiny-llama.js';
import { refArceeFusion, refKarcher, refMultislerp, refNearswap, refNuslerp, refRam, refSce } from './newer-reference.js';

type Tensors = Map<string, { data: Float32Array; shape: number[] }>;

const kernels = new TypedKernels({ threads: 1 });
let root: string;
const inputs = new Map<string, Map<string, Tensors>>();

async function readAll(dir: string): Promise<Tensors> {
  const c = await openCheckpoint(dir);
  const out: Tensors = new Map();
  for (const n of c.tensorNames()) out.set(n, { data: await c.readF32(n), shape: c.info(n).shape });
  await c.close();
  return out;
}

beforeAll(async () => {
  root = await tmpDir('mergelab-newer-');
  for (const dtype of ['F32', 'BF16'] as const) {
    const dir = path.join(root, dtype);
    await writeTinyLlama(path.join(dir, 'base'), { seed: 1, dtype });
    for (const [i, name] of ['m1', 'm2', 'm3'].entries()) await writeTinyLlama(path.join(dir, name), { seed: 10 + i, baseSeed: 1, deltaScale: 0.1, dtype });
    const m = new Map<string, Tensors>();
    for (const name of ['base', 'm1', 'm2', 'm3']) m.set(name, await readAll(path.join(dir, name)));
    inputs.set(dtype, m);
  }
});
afterAll(async () => {
  await kernels.dispose();
  await fs.rm(root, { recursive: true, force: true });
});

/** One bf16 step at |v| (2^-7 relative to the power of two below it). */
function bf16Step(v: number): number {
  return v === 0 ? 2 ** -133 : 2 ** (Math.floor(Math.log2(Math.abs(v))) - 7);
}

type Ref = (t: (model: string) => Float32Array, shape: number[], name: string) => Float64Array;

async function check(dtype: 'F32' | 'BF16', recipe: string, ref: Ref): Promise<number> {
  const dir = path.join(root, dtype);
  const file = path.join(dir, `r${Math.random().toString(36).slice(2)}.yaml`);
  await fs.writeFile(file, recipe + (dtype === 'BF16' ? 'dtype: bfloat16\n' : 'dtype: float32\n'));
  const out = path.join(dir, 'out');
  await runRecipe(file, { outDir: out, kernels, seed: 3 });
  const got = await readAll(out);
  const m = inputs.get(dtype)!;
  let compared = 0;
  for (const [name, { data, shape }] of m.get('base')!) {
    const want = ref((model) => m.get(model)!.get(name)!.data, shape, name);
    const g = got.get(name)!.data;
    expect(g.length).toBe(want.length);
    for (let j = 0; j < g.length; j++) {
      const tol = dtype === 'F32' ? 1e-6 * Math.max(1, Math.abs(want[j])) : bf16Step(want[j]);
      if (!(Math.abs(g[j] - want[j]) <= tol)) throw new Error(`${dtype} ${name}[${j}]: got ${g[j]}, want ${want[j]}`);
      compared++;
    }
    void data;
  }
  return compared;
}

const models = (names: string[], params = (_i: number) => '') => names.map((n, i) => `  - model: ${n}\n${params(i)}`).join('');
const W = [0.6, 0.3, 0.5];
const weight = (i: number) => `    parameters:\n      weight: ${W[i]}\n`;

for (const dtype of ['F32', 'BF16'] as const) {
  describe(`newer methods on Llama-shaped ${dtype} checkpoints`, () => {
    for (const n of [2, 3]) {
      const names = ['m1', 'm2', 'm3'].slice(0, n);
      it(`sce, select_topk 0.5, ${n} models`, async () => {
        const c = await check(dtype, `merge_method: sce\nbase_model: base\nparameters:\n  select_topk: 0.5\nmodels:\n${models(names)}`, (t) => refSce(t('base'), names.map(t), 0.5));
        expect(c).toBeGreaterThan(1000);
      });
      it(`ram and ramplus_tl, ${n} models`, async () => {
        await check(dtype, `merge_method: ram\nbase_model: base\nparameters:\n  epsilon: 0.05\nmodels:\n${models(names)}`, (t) => refRam(t('base'), names.map(t), 0.05, null));
        await check(dtype, `merge_method: ramplus_tl\nbase_model: base\nparameters:\n  epsilon: 0.05\n  r: 0.4\n  alpha: 0.7\nmodels:\n${models(names)}`, (t) => refRam(t('base'), names.map(t), 0.05, { r: 0.4, alpha: 0.7 }));
      });
      it(`multislerp with and without a base, ${n} models`, async () => {
        await check(dtype, `merge_method: multislerp\nbase_model: base\nmodels:\n${models(names, weight)}`, (t) => refMultislerp(names.map(t), W.slice(0, n), t('base')));
        await check(dtype, `merge_method: multislerp\nmodels:\n${models(names, weight)}`, (t) => refMultislerp(names.map(t), W.slice(0, n), null));
      });
      it(`karcher, ${n} models`, async () => {
        await check(dtype, `merge_method: karcher\nmodels:\n${models(names)}`, (t) => refKarcher(names.map(t)));
      });
    }
    it('nuslerp: two models, and two models plus a base (three), flattened and per row', async () => {
      await check(dtype, `merge_method: nuslerp\nmodels:\n${models(['m1', 'm2'], weight)}`, (t, shape) => refNuslerp(t('m1'), t('m2'), null, shape, [0.6, 0.3], { flatten: true, rowWise: false }));
      await check(dtype, `merge_method: nuslerp\nbase_model: base\nparameters:\n  nuslerp_flatten: false\nmodels:\n${models(['m1', 'm2'], weight)}`, (t, shape) =>
        refNuslerp(t('m1'), t('m2'), t('base'), shape, [0.6, 0.3], { flatten: false, rowWise: false }));
    });
    it('nearswap and arcee_fusion: base plus one model', async () => {
      await check(dtype, `merge_method: nearswap\nbase_model: base\nparameters:\n  t: 0.02\nmodels:\n${models(['m1'])}`, (t) => refNearswap(t('base'), t('m1'), 0.02));
      await check(dtype, `merge_method: arcee_fusion\nbase_model: base\nmodels:\n${models(['base', 'm1'])}`, (t, shape) => refArceeFusion(t('base'), t('m1'), shape).out);
    });
  });
}
