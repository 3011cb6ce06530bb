import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseExperiment } from '../../src/sweep/experiment.js';
import { expandExperiment, pointId } from '../../src/sweep/expand.js';
import { FolderHasher, contentKey } from '../../src/sweep/hash.js';
import { buildPlan, checkPlan } from '../../src/sweep/plan.js';
import { UserError } from '../../src/util/errors.js';
import { tempDir } from './helpers.js';

/** Fake model folders: the loader only checks that they exist. */
let zoo: string;
beforeAll(async () => {
  zoo = await tempDir('exp-zoo');
  for (const m of ['base', 'math', 'chat']) await fs.mkdir(path.join(zoo, m));
});

const GOOD = `name: t
models:
  base: zoo:base
  math: zoo:math
  chat: zoo:chat
seeds: [1, 2]
eval:
  suites: [math, chat]
  limit: 10
variants:
  chained:
    recipe: |
      name: s1
      merge_method: dare_ties
      base_model: \${base}
      models:
        - model: \${math}
          parameters: {weight: 1, density: \${density}}
      ---
      merge_method: task_arithmetic
      base_model: \${base}
      models:
        - model: s1
          parameters: {weight: \${w1}}
        - model: \${chat}
          parameters: {weight: \${w2}}
    sweep:
      grid:
        density: [0.1, 0.5, 1.0]
      zip:
        - w1: [1, 0.5]
          w2: [1, 0.5]
  linear:
    recipe: |
      merge_method: linear
      models:
        - model: math
          parameters: {weight: \${w}}
        - model: chat
          parameters: {weight: 1}
    sweep:
      grid:
        w: [0.25, 0.75]
`;

async function problems(text: string): Promise<string> {
  try {
    await parseExperiment(text, 'exp.yaml', { zooDir: zoo });
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected the experiment to be rejected');
}

describe('experiment files', () => {
  it('expands a grid with a zipped group per variant', async () => {
    const exp = await parseExperiment(GOOD, 'exp.yaml', { zooDir: zoo });
    expect(exp.variants.map((v) => v.name)).toEqual(['chained', 'linear']);
    expect(exp.eval).toEqual({ suites: ['math', 'chat'], limit: 10, batchSize: 32, samples: 3, backend: { type: 'builtin' } });
    expect(exp.resources).toEqual({ gpus: [], gpus_per_eval: 1 });
    expect(exp.maxModelsOnDisk).toBeNull();
    const pts = expandExperiment(exp);
    // 3 densities x 2 zipped weight pairs, then 2 linear weights.
    expect(pts.length).toBe(8);
    expect(pts[0].axes).toEqual({ density: 0.1, w1: 1, w2: 1 });
    expect(pts[1].axes).toEqual({ density: 0.1, w1: 0.5, w2: 0.5 });
    expect(pts[0].recipe).toContain('model: math\n');
    expect(pts[0].recipe).toContain('density: 0.1}');
    expect(pts[5].recipe).toContain('{weight: 0.5}');
    expect(pointId('chained', pts[0].axes, 2)).toBe('chained density=0.1 w1=1 w2=1 seed=2');
    expect(exp.models.math.dir).toBe(path.join(zoo, 'math'));
  });

  it('names file, line:column and field of a schema error', async () => {
    const msg = await problems(GOOD.replace('  limit: 10', '  limit: -3').replace('seeds: [1, 2]', 'seeds: [1, two]'));
    expect(msg).toMatch(/exp\.yaml:6:\d+: field seeds\[1\]: .*whole number/);
    expect(msg).toMatch(/exp\.yaml:9:10: field eval\.limit: limit is a positive whole number/);
  });

  it('rejects unknown fields by name', async () => {
    const msg = await problems(GOOD.replace('seeds: [1, 2]', 'seeds: [1, 2]\nsweeps: {}'));
    expect(msg).toMatch(/exp\.yaml:7:1: field sweeps: unknown field 'sweeps'/);
  });

  it('points at an unknown placeholder inside the recipe block', async () => {
    const msg = await problems(GOOD.replace('density: ${density}}', 'density: ${densty}}'));
    // Line 18 of the file, where the placeholder is written.
    expect(msg).toMatch(/exp\.yaml:18:\d+: field variants\.chained\.recipe: unknown placeholder \$\{densty\}; known names: base \(model\), math \(model\), chat \(model\), density \(axis\)/);
  });

  it('rejects an unknown model and a missing model folder', async () => {
    const msg = await problems(GOOD.replace('  chat: zoo:chat', '  chat: zoo:chatty').replace('seeds: [1, 2]', 'seeds: [1, 2]\nbaselines: [ghost]'));
    expect(msg).toMatch(/exp\.yaml:5:9: field models\.chat: zoo model 'chatty' not found at /);
    expect(msg).toMatch(/field baselines\[0\]: unknown model 'ghost'; models: base, math, chat/);
  });

  it('rejects bad axes: zipped lengths, unused axis, empty axis, duplicate value, reserved names', async () => {
    const zipped = await problems(GOOD.replace('          w2: [1, 0.5]', '          w2: [1, 0.5, 0.25]'));
    expect(zipped).toMatch(/exp\.yaml:\d+:\d+: field variants\.chained\.sweep\.zip\[0\]\.w2: zipped axis 'w2' has 3 values but 'w1' has 2/);
    const unused = await problems(GOOD.replace('        w: [0.25, 0.75]', '        w: [0.25, 0.75]\n        lr: [1, 2]'));
    expect(unused).toMatch(/exp\.yaml:44:9: axis 'lr' is not used by the recipe of variant 'linear'/);
    const empty = await problems(GOOD.replace('        w: [0.25, 0.75]', '        w: []'));
    expect(empty).toMatch(/field variants\.linear\.sweep\.grid\.w: an axis needs at least one value/);
    const dup = await problems(GOOD.replace('        w: [0.25, 0.75]', '        w: [0.25, 0.25]'));
    expect(dup).toMatch(/field variants\.linear\.sweep\.grid\.w\[1\]: value 0.25 appears twice/);
    const reserved = await problems(GOOD.replace('        w: [0.25, 0.75]', '        w: [0.25, 0.75]\n        seed: [1]'));
    expect(reserved).toMatch(/'seed' cannot be an axis: seeds are swept with the `seeds` field/);
    const clash = await problems(GOOD.replace('        w: [0.25, 0.75]', '        w: [0.25, 0.75]\n        math: [1]'));
    expect(clash).toMatch(/axis 'math' has the name of a model/);
  });

  it('rejects recipe and variants together, and a YAML syntax error with its position', async () => {
    expect(await problems(GOOD.replace('variants:', 'recipe: "x"\nvariants:'))).toMatch(/field recipe: `recipe` and `variants` cannot both be given/);
    expect(await problems('name: t\nmodels: {a: [\n')).toMatch(/exp\.yaml:\d+:\d+: YAML syntax error/);
  });

  it('validates the report block with the report schema', async () => {
    const msg = await problems(GOOD + 'report:\n  collapse:\n    parent_fraction: -1\n');
    expect(msg).toMatch(/exp\.yaml:\d+:\d+: field report\.collapse\.parentFraction: /);
    const ok = await parseExperiment(GOOD + 'report:\n  collapse:\n    parent_fraction: 0.4\n', 'exp.yaml', { zooDir: zoo });
    expect(ok.report.collapse?.parentFraction).toBe(0.4);
  });

  it('points a recipe problem found while planning at its line in the experiment file', async () => {
    const exp = await parseExperiment(GOOD.replace('        - model: ${chat}\n', '        - model: chatt\n'), 'exp.yaml', { zooDir: zoo });
    const err = await buildPlan(exp, { hasher: new FolderHasher(null), evaluatorVersion: 'test', checkHeaders: false }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(UserError);
    // Line 25 of the file holds `- model: chatt` (line 13 of the recipe block, whose `recipe: |` is on line 12).
    expect((err as Error).message).toMatch(/exp\.yaml:25:18: variant chained, stage 2, field models\[1\]\.model: model 'chatt' is neither a stage name \(stages: s1\) nor a local folder/);
    // Said once, for all 6 points of the variant (3 densities x 2 weightings), with the nearest model name.
    expect((err as Error).message).toMatch(/\(did you mean 'chat'\?\) \[all 6 points\]/);
    expect((err as UserError).problems).toHaveLength(1);
  });

  it('takes eval.backend, resources and max_models_on_disk', async () => {
    const served = GOOD.replace('  limit: 10', '  limit: 10\n  backend: {type: openai, serve: "vllm serve {model} --port {port}", ready_timeout: 60}') + 'resources: {gpus: [0, 1, 2, 3], gpus_per_eval: 2}\nmax_models_on_disk: 3\n';
    const exp = await parseExperiment(served, 'exp.yaml', { zooDir: zoo });
    expect(exp.eval.backend).toMatchObject({ type: 'openai', serve: 'vllm serve {model} --port {port}', ready_timeout: 60, request_timeout: 600 });
    expect(exp.resources).toEqual({ gpus: [0, 1, 2, 3], gpus_per_eval: 2 });
    expect(exp.maxModelsOnDisk).toBe(3);
    const lm = await parseExperiment(GOOD.replace('  limit: 10', '  limit: 10\n  backend: lm-eval'), 'exp.yaml', { zooDir: zoo });
    expect(lm.eval.backend).toMatchObject({ type: 'lm-eval', tasks: { math: 'gsm8k', chat: 'ifeval' } });
  });

  it('names the place of each problem with the backend, resources and disk bound', async () => {
    const at = (ev: string, top = '') => problems(GOOD.replace('  limit: 10', `  limit: 10\n${ev}`) + top);
    expect(await at('  backend: {type: opena}')).toMatch(/exp\.yaml:10:19: field eval\.backend\.type: unknown backend type "opena" .*\(did you mean 'openai'\?\)/);
    expect(await at('  backend: openai')).toMatch(/exp\.yaml:10:12: field eval\.backend\.serve: give either `serve` .* or `endpoint`/);
    expect(await at('  backend: {type: openai, serve: "vllm serve {model}"}')).toMatch(/exp\.yaml:10:34: field eval\.backend\.serve: serve must contain \{port\}/);
    expect(await at('  backend: {type: openai, serve: "x {model} --port {port}", ready_timout: 3}')).toMatch(/field eval\.backend\.ready_timout: unknown field 'ready_timout' \(did you mean 'ready_timeout'\?\)/);
    expect(await at('  backend: {type: openai, serve: "x {model} --port {port} {gpus}"}')).toMatch(/field eval\.backend\.serve: unknown placeholder \{gpus\}/);
    expect(await at('  backend: {type: lm-eval, tasks: {math: gsm8k}}')).toMatch(/exp\.yaml:8:18: field eval\.suites\[1\]: suite 'chat' has no lm-eval task: add it to eval\.backend\.tasks/);
    expect(await at('', 'resources: {gpus: [0, 0], gpus_per_eval: 3}\n')).toMatch(/field resources\.gpus: GPU 0 is listed twice[\s\S]*field resources\.gpus_per_eval: 3 GPUs per evaluation but only 2 listed/);
    expect(await at('', 'max_models_on_disk: 0\n')).toMatch(/field max_models_on_disk: expected a whole number >= 1/);
    expect(await at('', 'max_model_on_disk: 2\n')).toMatch(/unknown field 'max_model_on_disk' .*\(did you mean 'max_models_on_disk'\?\)/);
  });

  it('keys evaluations by the backend: builtin keys as before, one server command never serves another', async () => {
    const plan = async (ev: string) => {
      const exp = await parseExperiment(GOOD.replace('  limit: 10', `  limit: 10\n${ev}`), 'exp.yaml', { zooDir: zoo });
      return buildPlan(exp, { hasher: new FolderHasher(null), evaluatorVersion: 'v', checkHeaders: false });
    };
    const builtin = await plan('');
    // The key of a builtin evaluation is made of exactly what it was made of before backends existed.
    const ref = builtin.points.find((p) => p.id === 'ref base')!;
    expect(ref.evalKey).toBe(contentKey({ kind: 'eval', evaluator: 'v', model: `model:${ref.modelKey}`, suites: ['math', 'chat'], limit: 10, batchSize: 32, samples: 3 }));
    expect((await plan('  backend: builtin')).points.map((p) => p.evalKey)).toEqual(builtin.points.map((p) => p.evalKey));
    const keys = async (ev: string) => new Set((await plan(ev)).points.map((p) => p.evalKey));
    const a = await keys('  backend: {type: openai, serve: "vllm serve {model} --port {port}"}');
    const aSlow = await keys('  backend: {type: openai, serve: "vllm serve {model} --port {port}", ready_timeout: 5, concurrency: 2}');
    const b = await keys('  backend: {type: openai, serve: "vllm serve {model} --port {port} --dtype float16"}');
    const all = new Set(builtin.points.map((p) => p.evalKey));
    expect(aSlow).toEqual(a);
    for (const k of a) {
      expect(all.has(k)).toBe(false);
      expect(b.has(k)).toBe(false);
    }
  });

  it('the experiment files of the README\'s "Sweeping real checkpoints" parse and plan', async () => {
    const readme = await fs.readFile(path.resolve(__dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Sweeping real checkpoints'), readme.indexOf('\n## ', readme.indexOf('## Sweeping real checkpoints') + 5));
    const files = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).filter((t) => t.startsWith('name:'));
    expect(files.length).toBe(2);
    const backends: string[] = [];
    for (const text of files) {
      const exp = await parseExperiment(text, 'README.md', { checkModels: false });
      backends.push(exp.eval.backend.type);
      expect(exp.resources.gpus.length).toBeGreaterThan(0);
      expect(exp.maxModelsOnDisk).toBeGreaterThan(0);
      // No 7B folders here: the recipes are checked as for models that are not available.
      const { problems, points } = await checkPlan(exp, { checkHeaders: false, prior: { problems: [], unavailableModels: new Set(Object.keys(exp.models)) } });
      expect(problems).toEqual([]);
      expect(points).toBeGreaterThan(1);
    }
    expect(backends).toEqual(['openai', 'lm-eval']);
  });

  it('loads every shipped experiment file', async () => {
    const dir = path.resolve(__dirname, '../../experiments');
    for (const f of (await fs.readdir(dir)).filter((x) => x.endsWith('.yaml'))) {
      // Model folders are checked by the run; here the files' own structure is.
      const exp = await parseExperiment(await fs.readFile(path.join(dir, f), 'utf8'), f, { checkModels: false });
      expect(expandExperiment(exp).length, f).toBeGreaterThan(0);
    }
  });
});
