import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { withLayer } from '../../src/checkpoint/names.js';
import { planStage, type HeaderView } from '../../src/merge/plan.js';
import { getMethod } from '../../src/methods/registry.js';
import { loadRecipe } from '../../src/recipe/recipe.js';
import { tinyLlamaShapes, tmpDir } from '../merge/tiny-llama.js';
import { formatProblem, type Problem } from '../../src/util/errors.js';

const texts = (ps: readonly Problem[]): string[] => ps.map(formatProblem);

/** Header of a tiny Llama without any tensor data: the planner reads nothing else. */
function fakeView(opts: { layers?: number; dtype?: 'F32' | 'BF16'; drop?: string[]; reshape?: Record<string, number[]> } = {}): HeaderView {
  const shapes = new Map(tinyLlamaShapes({ layers: opts.layers ?? 2 }).filter(([n]) => !opts.drop?.includes(n)).map(([n, s]) => [n, opts.reshape?.[n] ?? s]));
  return {
    config: { num_hidden_layers: opts.layers ?? 2 },
    tensorNames: () => [...shapes.keys()],
    has: (n) => shapes.has(n),
    info: (n) => {
      const shape = shapes.get(n)!;
      const numel = shape.reduce((a, b) => a * b, 1);
      return { dtype: opts.dtype ?? 'F32', shape, numel, byteLength: numel * 4 };
    },
  };
}

let root: string;
beforeAll(async () => {
  root = await tmpDir('mergelab-plan-');
  for (const d of ['base', 'math', 'chat', 'big']) await fs.mkdir(path.join(root, d));
});

async function plan(text: string, views: Record<string, HeaderView> = {}, stageName?: string) {
  const r = await loadRecipe({ text, file: 'r.yaml', dir: root }, { cwd: root });
  const stage = stageName ? r.stages.find((s) => s.name === stageName)! : r.final;
  const all: Record<string, HeaderView> = { base: fakeView(), math: fakeView(), chat: fakeView(), ...views };
  return planStage(stage, getMethod(stage.method), all);
}

const Q0 = 'model.layers.0.self_attn.q_proj.weight';
const UP1 = 'model.layers.1.mlp.up_proj.weight';

describe('parameter resolution per tensor', () => {
  it('model entry wins over the top level; globals come from the top level only', async () => {
    const p = await plan(['merge_method: dare_ties', 'base_model: base', 'models:', '  - model: math', '    parameters: {weight: 0.7, density: 0.3, normalize: false}', '  - model: chat', '    parameters: {weight: 0.2}', 'parameters:', '  density: 0.9', '  normalize: true', '  rescale: inverse_density'].join('\n'));
    expect(p.problems).toEqual([]);
    const t = p.tensors.find((x) => x.name === Q0)!;
    expect(t.base).toEqual({ ref: 'base', tensor: Q0 });
    expect(t.models).toEqual([
      { ref: 'math', tensor: Q0, params: { weight: 0.7, density: 0.3 } },
      { ref: 'chat', tensor: Q0, params: { weight: 0.2, density: 0.9 } },
    ]);
    expect(t.global).toEqual({ normalize: true, rescale: 'inverse_density' });
    expect(p.rescaleRule).toBe('inverse_density');
    expect(p.warnings.join('\n')).toContain("'normalize' is a global parameter, read only from the top-level parameters");
  });

  it('slices: source, then slice, then top level; gradients follow the layer; embeddings and norms use t = 0', async () => {
    const text = [
      'merge_method: task_arithmetic',
      'base_model: base',
      'slices:',
      '  - sources:',
      '      - model: base',
      '        layer_range: [0, 2]',
      '      - model: math',
      '        layer_range: [0, 2]',
      '        parameters:',
      '          weight:',
      '            - filter: self_attn',
      '              value: [1, 3]',
      '      - model: chat',
      '        layer_range: [0, 2]',
      '    parameters:',
      '      weight: 0.25',
      'parameters:',
      '  weight: 9',
    ].join('\n');
    const p = await plan(text);
    expect(p.problems).toEqual([]);
    const w = (name: string, ref: string) => p.tensors.find((t) => t.name === name)!.models.find((m) => m.ref === ref)!.params.weight;
    expect(w(Q0, 'math')).toBe(1); // filter matched, gradient at t = 0
    expect(w('model.layers.1.self_attn.q_proj.weight', 'math')).toBe(3); // t = 1
    expect(w(UP1, 'math')).toBe(0.25); // filter did not match: falls through to the slice
    expect(w(UP1, 'chat')).toBe(0.25);
    expect(w('model.embed_tokens.weight', 'math')).toBe(0.25);
    expect(p.tensors.map((t) => t.name)[0]).toBe('model.embed_tokens.weight');
    expect(p.tensors.map((t) => t.name).slice(-2)).toEqual(['model.norm.weight', 'lm_head.weight']);
  });

  it('a top-level gradient over 3 layers interpolates by the spec formula', async () => {
    const p = await plan('merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: math\nparameters:\n  weight: [0, 1, 0.5, 0.5]\n', { base: fakeView({ layers: 3 }), math: fakeView({ layers: 3 }) });
    const w = (n: string) => p.tensors.find((t) => t.name === n)!.models[0].params.weight;
    // L = 3, list of 4: layer 1 -> t = 0.5, s = 1.5 -> 0.75; layer 2 -> 0.5; outside layers -> list[0].
    expect(w('model.layers.1.mlp.down_proj.weight')).toBeCloseTo(0.75, 12);
    expect(w('model.layers.2.mlp.down_proj.weight')).toBe(0.5);
    expect(w('model.layers.0.mlp.down_proj.weight')).toBe(0);
    expect(w('lm_head.weight')).toBe(0);
  });

  it('slices renumber output layers and read each source at its own layer', async () => {
    const text = ['merge_method: passthrough', 'slices:', '  - sources:', '      - model: big', '        layer_range: [0, 1]', '  - sources:', '      - model: big', '        layer_range: [3, 4]'].join('\n');
    const p = await plan(text, { big: fakeView({ layers: 4 }) });
    expect(p.problems).toEqual([]);
    const t = p.tensors.find((x) => x.name === Q0.replace('.0.', '.1.'))!;
    expect(t.models[0]).toEqual({ ref: 'big', tensor: withLayer(Q0, 3), params: {} });
    expect(p.tensors.filter((x) => x.layer !== null).length).toBe(18);
    expect(p.config).toEqual({ num_hidden_layers: 2 });
  });
});

describe('problems found before reading tensors', () => {
  it('a model without weight names the stage, the model and the parameter', async () => {
    const text = ['name: mistral-wizardmath-dare-0.7-density', 'merge_method: dare_ties', 'base_model: base', 'models:', '  - model: base', '  - model: math', '    parameters: {weight: 1, density: 0.3}', '---', 'merge_method: task_arithmetic', 'base_model: base', 'models:', '  - model: mistral-wizardmath-dare-0.7-density', '  - model: chat', '    parameters:', '      weight: 1.0'].join('\n');
    const p = await plan(text, { 'mistral-wizardmath-dare-0.7-density': fakeView() });
    expect(p.problems).toHaveLength(1);
    expect(texts(p.problems)[0]).toBe(
      "r.yaml:12:5: stage 2: model 'mistral-wizardmath-dare-0.7-density' (models[0]): missing required parameter 'weight' for merge_method task_arithmetic (set it in this model's parameters, the slice's, or the top-level parameters; there is no default)",
    );
  });

  it('reports every problem at once: density range, della epsilon, missing tensor, shape mismatch, unknown parameter warning', async () => {
    const text = ['merge_method: della', 'base_model: base', 'models:', '  - model: math', '    parameters: {weight: 1, density: 1.5}', '  - model: chat', '    parameters: {weight: 1, density: 0.9, epsilon: 0.2, gama: 1}'].join('\n');
    const p = await plan(text, { chat: fakeView({ drop: ['model.norm.weight'], reshape: { [UP1]: [13, 8] } }) });
    const all = texts(p.problems).join('\n');
    expect(all).toContain("r.yaml:5:38: model 'math' (models[0]): density 1.5 is outside (0, 1]");
    expect(all).toContain("model 'chat' (models[1]): della needs 0 < density - epsilon and density + epsilon < 1, got density 0.9 and epsilon 0.2");
    expect(all).toContain("model 'chat' (models[1]) has no tensor 'model.norm.weight'");
    expect(all).toContain(`model 'chat' (models[1]): 1 tensor differs in shape from 'base' (${UP1} [13, 8] vs [12, 8]); expected the shapes of 'base'`);
    expect(p.problems.length).toBe(4);
    expect(p.warnings.join('\n')).toContain("has no parameter 'gama'");
  });

  it('slerp needs t and exactly two models; methods needing a base say so', async () => {
    const p = await plan('merge_method: slerp\nbase_model: base\nmodels:\n  - model: base\n  - model: math\n  - model: chat\n');
    const all = texts(p.problems).join('\n');
    expect(all).toContain('merge_method slerp takes exactly 1 model besides base_model, got 2');
    expect(all).toContain("missing required global parameter 't' for merge_method slerp");
    const q = await plan('merge_method: ties\nmodels:\n  - model: math\n    parameters: {weight: 1}\n');
    expect(texts(q.problems)[0]).toContain('merge_method ties needs base_model');
  });

  it('a filter list that leaves some tensors without weight says which tensors', async () => {
    const p = await plan('merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: math\n    parameters:\n      weight:\n        - filter: mlp\n          value: 1\n');
    expect(p.problems).toHaveLength(1);
    expect(texts(p.problems)[0]).toMatch(/missing required parameter 'weight'.*\(\d+ tensors, e\.g\. model\.embed_tokens\.weight\)$/);
  });
});
