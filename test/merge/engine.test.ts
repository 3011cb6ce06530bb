import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/checkpoint/reader.js';
import { TypedKernels } from '../../src/kernels/typed.js';
import { DIAGNOSTICS_FILE, canonicalStage, mergeStage, runRecipe } from '../../src/merge/engine.js';
import { loadRecipe } from '../../src/recipe/recipe.js';
import { UserError } from '../../src/util/errors.js';
import { fixtureValues, tinyLlamaShapes, tmpDir, writeTinyLlama } from './tiny-llama.js';

const kernels = new TypedKernels({ threads: 1 });
let root: string;
let base: Map<string, Float32Array>;
let math: Map<string, Float32Array>;
let chat: Map<string, Float32Array>;

beforeAll(async () => {
  root = await tmpDir('mergelab-engine-');
  base = await writeTinyLlama(path.join(root, 'models/base'), { seed: 1 });
  math = await writeTinyLlama(path.join(root, 'models/math'), { seed: 2, baseSeed: 1, deltaScale: 0.05 });
  chat = await writeTinyLlama(path.join(root, 'models/chat'), { seed: 3, baseSeed: 1, deltaScale: 0.05 });
});
afterAll(async () => {
  await kernels.dispose();
  await fs.rm(root, { recursive: true, force: true });
});

async function readAll(dir: string): Promise<Map<string, Float32Array>> {
  const c = await openCheckpoint(dir);
  const out = new Map<string, Float32Array>();
  for (const n of c.tensorNames()) out.set(n, await c.readF32(n));
  await c.close();
  return out;
}

async function errorOf(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return e;
  }
  throw new Error('expected a UserError');
}

/** What is in a folder besides the given names (temp folders left behind would show here). */
async function leftovers(dir: string, expected: string[]): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => !expected.includes(n));
}

// The seed's two documents with local folders for the models and a name for stage 1.
const SEED = `name: mistral-wizardmath-dare-0.7-density
models:
  - model: models/base
    # no parameters necessary for base model
  - model: models/math
    parameters:
      weight: 1
      density: 0.3
merge_method: dare_ties
base_model: models/base
parameters:
  normalize: true
  int8_mask: true
dtype: bfloat16
---
merge_method: task_arithmetic
base_model: models/base
models:
  - model: mistral-wizardmath-dare-0.7-density
    parameters:
      weight: 1.0
  - model: models/chat
    parameters:
      weight: 1.0
dtype: bfloat16
`;

describe('runRecipe', () => {
  it('task_arithmetic gives base + sum w_i (X_i - B) on float32 checkpoints', async () => {
    await fs.writeFile(path.join(root, 'ta.yaml'), 'merge_method: task_arithmetic\nbase_model: models/base\nmodels:\n  - model: models/math\n    parameters: {weight: 0.5}\n  - model: models/chat\n    parameters: {weight: [0.25, 1]}\ndtype: float32\n');
    const out = path.join(root, 'out/ta');
    const r = await runRecipe(path.join(root, 'ta.yaml'), { outDir: out, kernels, seed: 5 });
    expect(r.stages).toHaveLength(1);
    expect(r.stages[0]).toMatchObject({ method: 'task_arithmetic', seed: 5, backend: 'typed' });
    const got = await readAll(out);
    expect([...got.keys()].sort()).toEqual(tinyLlamaShapes().map(([n]) => n).sort());
    for (const [name, b] of base) {
      const layer = /layers\.(\d+)\./.exec(name)?.[1];
      const w2 = layer === undefined ? 0.25 : [0.25, 1][Number(layer)];
      const g = got.get(name)!;
      for (let i = 0; i < b.length; i++) {
        const want = b[i] + 0.5 * (math.get(name)![i] - b[i]) + w2 * (chat.get(name)![i] - b[i]);
        expect(Math.abs(g[i] - want)).toBeLessThan(1e-6);
      }
    }
    const files = await fs.readdir(out);
    expect(files).toEqual(expect.arrayContaining(['model.safetensors', 'config.json', 'tokenizer.json', 'mergekit_config.yml', DIAGNOSTICS_FILE]));
    const diag = JSON.parse(await fs.readFile(path.join(out, DIAGNOSTICS_FILE), 'utf8'));
    expect(diag).toMatchObject({ seed: 5, backend: 'typed' });
    expect(diag.stages).toHaveLength(1);
    expect(diag.stages[0]).toMatchObject({ seed: 5, backend: 'typed', method: 'task_arithmetic', stage: 'stage1' });
    expect(diag.stages[0].tensors.length).toBe(base.size);
    expect(diag.stages[0].totals.taskVectorNorm['models/math']).toBeGreaterThan(0);
    const cfg = JSON.parse(await fs.readFile(path.join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ model_type: 'llama', torch_dtype: 'float32' });
    expect(await fs.readFile(path.join(out, 'mergekit_config.yml'), 'utf8')).toContain('merge_method: task_arithmetic');
  });

  it("runs the seed's two stages as one file, with the same numbers as running each stage by hand", async () => {
    const file = path.join(root, 'seed.yaml');
    await fs.writeFile(file, SEED);
    const out = path.join(root, 'out/seed');
    const r = await runRecipe(file, { outDir: out, kernels, seed: 42 });
    expect(r.stages.map((s) => [s.stage, s.method])).toEqual([
      ['mistral-wizardmath-dare-0.7-density', 'dare_ties'],
      ['stage2', 'task_arithmetic'],
    ]);
    expect(r.stages[0].rescaleRule).toBe('l1');
    // DARE at density 0.3 keeps about 30% of each tensor's delta.
    expect(r.stages[0].totals.keptFraction['models/math']).toBeGreaterThan(0.2);
    expect(r.stages[0].totals.keptFraction['models/math']).toBeLessThan(0.4);
    expect(await leftovers(path.join(root, 'out'), ['ta', 'seed'])).toEqual([]);
    const diag = JSON.parse(await fs.readFile(path.join(out, DIAGNOSTICS_FILE), 'utf8'));
    expect(diag.stages.map((s: { stage: string }) => s.stage)).toEqual(['mistral-wizardmath-dare-0.7-density', 'stage2']);
    const stored = await fs.readFile(path.join(out, 'mergekit_config.yml'), 'utf8');
    expect(stored).toContain('name: mistral-wizardmath-dare-0.7-density');
    expect(stored).toContain('---\nmerge_method: task_arithmetic');

    // By hand: stage 1 into a folder, then stage 2 reading it.
    const recipe = await loadRecipe(file);
    const [s1, s2] = recipe.stages;
    const mid = path.join(root, 'hand/stage1');
    const inputs = { 'models/base': path.join(root, 'models/base'), 'models/math': path.join(root, 'models/math'), 'models/chat': path.join(root, 'models/chat') };
    await mergeStage(s1, { inputs, outDir: mid, seed: 42, kernels });
    await mergeStage(s2, { inputs: { 'mistral-wizardmath-dare-0.7-density': mid }, outDir: path.join(root, 'hand/final'), seed: 42, kernels });
    const chained = await readAll(out);
    const byHand = await readAll(path.join(root, 'hand/final'));
    for (const [n, v] of byHand) expect(Buffer.from(chained.get(n)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
    const c = await openCheckpoint(out);
    expect(c.info('model.layers.0.mlp.up_proj.weight').dtype).toBe('BF16');
    await c.close();
    // A different seed draws different DARE masks.
    const other = await runRecipe(file, { outDir: path.join(root, 'out/seed-7'), kernels, seed: 7 });
    expect(other.stages[0].totals.keptFraction['models/math']).not.toBe(r.stages[0].totals.keptFraction['models/math']);
  });

  it('keepIntermediate keeps stage outputs beside the output', async () => {
    const file = path.join(root, 'seed.yaml');
    const out = path.join(root, 'keep/final');
    const r = await runRecipe(file, { outDir: out, kernels, seed: 1, keepIntermediate: true });
    const mid = r.intermediates['mistral-wizardmath-dare-0.7-density'];
    expect(mid).toBe(path.join(root, 'keep/final.stages/mistral-wizardmath-dare-0.7-density'));
    expect(await fs.readdir(mid)).toContain('model.safetensors');
  });

  it("the seed's stage 2 without weight is an error naming stage, model and parameter, and leaves no folder", async () => {
    const file = path.join(root, 'seed-noweight.yaml');
    await fs.writeFile(file, SEED.replace('  - model: mistral-wizardmath-dare-0.7-density\n    parameters:\n      weight: 1.0\n', '  - model: mistral-wizardmath-dare-0.7-density\n'));
    const out = path.join(root, 'fail/seed');
    const e = await errorOf(runRecipe(file, { outDir: out, kernels }));
    expect(e.message).toBe(
      `${file}:19:5: stage 2: model 'mistral-wizardmath-dare-0.7-density' (models[0]): missing required parameter 'weight' for merge_method task_arithmetic (set it in this model's parameters, the slice's, or the top-level parameters; there is no default)`,
    );
    expect(await fs.readdir(path.join(root, 'fail')).catch(() => [])).toEqual([]);
  });

  it('an unknown method, a dangling reference and a bad density are reported together before anything is written', async () => {
    const text = 'name: one\nmerge_method: dare_tie\nbase_model: models/base\nmodels:\n  - model: models/math\n    parameters: {weight: 1}\n---\nmerge_method: ties\nbase_model: models/base\nmodels:\n  - model: one\n    parameters: {weight: 1, density: 0}\n  - model: models/nope\n    parameters: {weight: 1}\n';
    const out = path.join(root, 'fail2/out');
    const e = await errorOf(runRecipe({ text, file: 'bad.yaml', dir: root }, { outDir: out, kernels }));
    expect(e.message).toContain("bad.yaml:13:12: stage 2, field models[1].model: model 'models/nope' is neither a stage name");
    await fs.writeFile(path.join(root, 'bad2.yaml'), text.replace('models/nope', 'models/chat'));
    const e2 = await errorOf(runRecipe(path.join(root, 'bad2.yaml'), { outDir: out, kernels }));
    expect(e2.message).toContain(`bad2.yaml:2:15: stage 1 (one), field merge_method: unknown merge_method "dare_tie"`);
    expect(e2.message).toContain("(did you mean 'dare_ties'?)");
    // Stage 2 is still checked against stage 1's reference input: its density is reported too.
    expect(e2.message).toContain("bad2.yaml:12:38: stage 2: model 'one' (models[0]): density 0 is outside (0, 1]");
    expect(await fs.readdir(path.join(root, 'fail2')).catch(() => [])).toEqual([]);
    const e3 = await errorOf(runRecipe({ text: text.replace('dare_tie', 'dare_ties').replace('models/nope', 'models/chat'), file: 'bad3.yaml', dir: root }, { outDir: out, kernels }));
    expect(e3.message).toContain("stage 2: model 'one' (models[0]): density 0 is outside (0, 1]");
    expect(e3.message).toContain('bad3.yaml:12:38');
    expect(await fs.readdir(path.join(root, 'fail2')).catch(() => [])).toEqual([]);
  });

  it('a failure in the middle of stage 2 leaves no output and no intermediate folders', async () => {
    // Kernels that fail on the 30th combine: stage 1 (21 tensors) completes, stage 2 fails midway.
    let calls = 0;
    const failing = Object.create(kernels) as typeof kernels;
    failing.combine = async (spec) => {
      if (++calls === 30) throw new UserError('simulated failure in tensor 9 of stage 2');
      return kernels.combine(spec);
    };
    const bad = path.join(root, 'fail3');
    await fs.mkdir(bad);
    const e = await errorOf(runRecipe(path.join(root, 'seed.yaml'), { outDir: path.join(bad, 'out'), kernels: failing }));
    expect(e.message).toContain('simulated failure');
    expect(calls).toBe(30);
    expect(await fs.readdir(bad)).toEqual([]);
  });

  it('warns with the tensor name when an input holds non-finite values', async () => {
    const vals = fixtureValues({ seed: 5, baseSeed: 1 });
    const q = vals.get('model.layers.1.self_attn.q_proj.weight')!;
    q[3] = NaN;
    q[4] = Infinity;
    await writeTinyLlama(path.join(root, 'models/nan'), { seed: 5, baseSeed: 1, overrides: { 'model.layers.1.self_attn.q_proj.weight': q } });
    const r = await runRecipe({ text: 'merge_method: task_arithmetic\nbase_model: models/base\nmodels:\n  - model: models/nan\n    parameters: {weight: 1}\n', dir: root }, { outDir: path.join(root, 'out/nan'), kernels });
    expect(r.warnings.join('\n')).toContain("tensor model.layers.1.self_attn.q_proj.weight of model 'models/nan' has 2 non-finite values");
    expect(r.warnings.join('\n')).toContain('merged tensor model.layers.1.self_attn.q_proj.weight has 2 non-finite values');
    expect(r.warnings.filter((w) => w.includes('non-finite'))).toHaveLength(2);
    // As the base of a DARE merge (masks drop most of the delta), and through a method without diagnostics.
    const d = await runRecipe({ text: 'merge_method: dare_linear\nbase_model: models/nan\nmodels:\n  - model: models/math\n    parameters: {weight: 1, density: 0.1}\n', dir: root }, { outDir: path.join(root, 'out/nan2'), kernels });
    expect(d.warnings.join('\n')).toContain("tensor model.layers.1.self_attn.q_proj.weight of model 'models/nan' has 2 non-finite values");
    const p = await runRecipe({ text: 'merge_method: passthrough\nmodels:\n  - model: models/nan\n', dir: root }, { outDir: path.join(root, 'out/nan3'), kernels });
    expect(p.warnings.join('\n')).toContain("tensor model.layers.1.self_attn.q_proj.weight of model 'models/nan' has 2 non-finite values");
  });

  it('passthrough slices stack layers from two models, renumbered, with num_hidden_layers updated', async () => {
    const text = 'merge_method: passthrough\nslices:\n  - sources:\n      - model: models/math\n        layer_range: [0, 2]\n  - sources:\n      - model: models/chat\n        layer_range: [1, 2]\ndtype: float32\n';
    const out = path.join(root, 'out/frank');
    await runRecipe({ text, dir: root }, { outDir: out, kernels });
    const got = await readAll(out);
    expect(got.get('model.layers.2.mlp.down_proj.weight')).toEqual(chat.get('model.layers.1.mlp.down_proj.weight'));
    expect(got.get('model.layers.1.mlp.down_proj.weight')).toEqual(math.get('model.layers.1.mlp.down_proj.weight'));
    expect(got.get('model.embed_tokens.weight')).toEqual(math.get('model.embed_tokens.weight'));
    expect(got.get('lm_head.weight')).toEqual(chat.get('lm_head.weight'));
    const cfg = JSON.parse(await fs.readFile(path.join(out, 'config.json'), 'utf8'));
    expect(cfg.num_hidden_layers).toBe(3);
  });

  it('worker threads, and reusing their buffers tensor after tensor, change no output bit', async () => {
    // Tensors above the kernels' 65536-element block so the threaded path really runs.
    const shapes = tinyLlamaShapes({ hidden: 128, inter: 640, vocab: 600, kv: 32 });
    await writeTinyLlama(path.join(root, 'wide/base'), { seed: 11, shapes, dtype: 'BF16' });
    await writeTinyLlama(path.join(root, 'wide/math'), { seed: 12, baseSeed: 11, shapes, dtype: 'BF16' });
    await writeTinyLlama(path.join(root, 'wide/chat'), { seed: 13, baseSeed: 11, shapes, dtype: 'BF16' });
    const text = 'merge_method: dare_ties\nbase_model: wide/base\nmodels:\n  - model: wide/math\n    parameters: {weight: 0.6, density: 0.4}\n  - model: wide/chat\n    parameters: {weight: 0.5, density: 0.7}\n';
    const stage = (await loadRecipe({ text, dir: root })).final;
    const threaded = new TypedKernels({ threads: 2, parallelMin: 1 });
    const out = (n: string) => path.join(root, 'recycle', n);
    try {
      await mergeStage(stage, { inputs: {}, outDir: out('single'), seed: 3, kernels });
      await mergeStage(stage, { inputs: {}, outDir: out('threads'), seed: 3, kernels: threaded });
      await mergeStage(stage, { inputs: {}, outDir: out('reused'), seed: 3, kernels: threaded, ownsKernels: true });
    } finally {
      await threaded.dispose();
    }
    const ref = await readAll(out('single'));
    expect(ref.get('model.layers.0.mlp.up_proj.weight')!.length).toBeGreaterThan(65536);
    for (const other of ['threads', 'reused']) {
      const got = await readAll(out(other));
      for (const [n, v] of ref) expect({ other, n, same: Buffer.from(got.get(n)!.buffer).equals(Buffer.from(v.buffer)) }).toEqual({ other, n, same: true });
    }
  });

  it('refuses an output folder that is an input model', async () => {
    const e = await errorOf(runRecipe({ text: 'merge_method: linear\nmodels:\n  - model: models/math\n    parameters: {weight: 1}\n', dir: root }, { outDir: path.join(root, 'models'), kernels }));
    expect(e.message).toContain(`--out ${path.join(root, 'models')}: this folder contains the input model folder ${path.join(root, 'models/math')}`);
    expect(await fs.readdir(path.join(root, 'models/math'))).toContain('model.safetensors');
  });

  it('canonicalStage is stable and changes with what changes the output', async () => {
    const a = await loadRecipe({ text: 'merge_method: ties\nbase_model: models/base\nmodels:\n  - model: models/math\n    parameters: {weight: 1, density: 0.5}\n', dir: root });
    const b = await loadRecipe({ text: 'base_model: models/base\nmerge_method: ties\nmodels:\n  - parameters: {density: 0.5, weight: 1}\n    model: models/math\n', dir: root });
    const c = await loadRecipe({ text: 'merge_method: ties\nbase_model: models/base\nmodels:\n  - model: models/math\n    parameters: {weight: 1, density: 0.6}\n', dir: root });
    expect(canonicalStage(a.final)).toBe(canonicalStage(b.final));
    expect(canonicalStage(a.final)).not.toBe(canonicalStage(c.final));
    expect(canonicalStage(a.final)).toContain(path.join(root, 'models/math'));
  });
});
