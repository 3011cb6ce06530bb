import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluateSetting, gradientT, interpolate, lookupParam } from '../../src/recipe/params.js';
import { loadRecipe, parseModelDirFlags, resolveParsed } from '../../src/recipe/recipe.js';
import { parseRecipeText } from '../../src/recipe/source.js';
import { UserError } from '../../src/util/errors.js';
import { tmpDir } from '../merge/tiny-llama.js';

let root: string;
beforeAll(async () => {
  root = await tmpDir('mergelab-recipe-');
  // Folders only need to exist for reference resolution; nothing reads tensors here.
  for (const d of ['base', 'math', 'chat']) await fs.mkdir(path.join(root, d));
});

async function errorOf(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

const load = (text: string, modelDirs = {}) => loadRecipe({ text, file: 'r.yaml', dir: root }, { modelDirs, cwd: root });

describe('YAML and schema errors', () => {
  it('a YAML syntax error names file, line and column', async () => {
    const e = await errorOf(load('merge_method: ties\nmodels: [\n  - model: base\nbase_model: base\n'));
    expect(e.message).toMatch(/r\.yaml:3:3: YAML syntax error: Block collections are not allowed/);
    const e2 = await errorOf(load('merge_method: ties\nmodels:\n  - model: base\n   parameters: {weight: 1}\n'));
    expect(e2.message).toMatch(/r\.yaml:4:\d+: YAML syntax error/);
  });

  it('the seed as published (two stages in one document) is a duplicate-key error that says to use ---', async () => {
    const text = 'merge_method: dare_ties\nbase_model: base\nmodels:\n  - model: math\n    parameters: {weight: 1}\n\nmerge_method: task_arithmetic\n';
    const e = await errorOf(load(text));
    expect(e.message).toMatch(/r\.yaml:7:1: YAML syntax error: Map keys must be unique/);
    expect(e.message).toContain('---');
  });

  it('schema errors name the field and its position, all at once', async () => {
    const text = ['merge_method: ties', 'base_model: base', 'models:', '  - model: math', '    paramters: {weight: 1}', '  - model: chat', '    parameters:', '      weight: [a, b]', 'dtype: int4'].join('\n');
    const e = await errorOf(load(text));
    expect(e.message).toContain("r.yaml:5:5: field models[0].paramters: unknown field 'paramters'");
    expect(e.message).toMatch(/r\.yaml:8:15: field models\[1\]\.parameters\.weight: expected a number/);
    expect(e.message).toMatch(/r\.yaml:9:8: field dtype: expected one of/);
  });

  it('a stage without models or slices, or without merge_method, is an error naming the field', async () => {
    const e = await errorOf(load('base_model: base\n'));
    expect(e.message).toContain('merge_method is required');
    expect(e.message).toContain('needs `models` or `slices`');
  });

  it('parses --model-dir flags and rejects malformed ones', () => {
    expect(parseModelDirFlags(['a/b=/x/y', 'c==d'])).toEqual({ 'a/b': '/x/y', c: '=d' });
    expect(() => parseModelDirFlags(['nopath'])).toThrow(/expected NAME=PATH/);
  });
});

describe('stage graph', () => {
  it('orders stages by dependency, final = last document, and marks stage inputs', async () => {
    const text = ['name: second', 'merge_method: task_arithmetic', 'base_model: base', 'models:', '  - model: first', '    parameters: {weight: 1}', '---', 'name: first', 'merge_method: dare_ties', 'base_model: base', 'models:', '  - model: math', '    parameters: {weight: 1, density: 0.5}', '---', 'merge_method: linear', 'models:', '  - model: second', '    parameters: {weight: 1}', '  - model: chat', '    parameters: {weight: 1}'].join('\n');
    const r = await load(text);
    expect(r.stages.map((s) => s.name)).toEqual(['first', 'second', 'stage3']);
    expect(r.final.name).toBe('stage3');
    expect(r.stages[1].inputs.first).toEqual({ kind: 'stage', stage: 'first' });
    expect(r.stages[1].inputs.base).toEqual({ kind: 'path', path: path.join(root, 'base') });
    expect(r.stages[1].dependsOn).toEqual(['first']);
  });

  it('a cycle is an error naming the stages', async () => {
    const text = ['name: a', 'merge_method: linear', 'models:', '  - model: b', '    parameters: {weight: 1}', '---', 'name: b', 'merge_method: linear', 'models:', '  - model: a', '    parameters: {weight: 1}'].join('\n');
    const e = await errorOf(load(text));
    expect(e.message).toMatch(/cycle: b -> a -> b/);
  });

  it('a stage using its own name is a cycle', async () => {
    const e = await errorOf(load('name: x\nmerge_method: linear\nmodels:\n  - model: x\n    parameters: {weight: 1}\n'));
    expect(e.message).toContain("r.yaml:4:12: stage 1 (x), field models[0].model: stage 'x' uses its own output 'x' as a model (a cycle)");
  });

  it('a dangling reference names the model, its position and the --model-dir fix; every one is reported', async () => {
    const text = ['merge_method: task_arithmetic', 'base_model: mistralai/Mistral-7B-v0.1', 'models:', '  - model: Intel/neural-chat-7b-v3-3', '    parameters: {weight: 1}'].join('\n');
    const e = await errorOf(load(text));
    expect(e.message).toContain("r.yaml:2:13: field base_model: model 'mistralai/Mistral-7B-v0.1' is neither a stage name nor a local folder");
    expect(e.message).toContain("r.yaml:4:12: field models[0].model: model 'Intel/neural-chat-7b-v3-3' is neither");
    expect(e.message).toContain('--model-dir Intel/neural-chat-7b-v3-3=PATH');
  });

  it('--model-dir resolves hub names to folders, and a wrong path is named', async () => {
    const text = ['merge_method: task_arithmetic', 'base_model: mistralai/Mistral-7B-v0.1', 'models:', '  - model: Intel/neural-chat-7b-v3-3', '    parameters: {weight: 1}'].join('\n');
    const r = await load(text, { 'mistralai/Mistral-7B-v0.1': 'base', 'Intel/neural-chat-7b-v3-3': path.join(root, 'chat') });
    expect(r.final.inputs['mistralai/Mistral-7B-v0.1']).toEqual({ kind: 'path', path: path.join(root, 'base') });
    const e = await errorOf(load(text, { 'mistralai/Mistral-7B-v0.1': 'nope', 'Intel/neural-chat-7b-v3-3': 'chat' }));
    expect(e.message).toContain('--model-dir mistralai/Mistral-7B-v0.1=nope');
  });

  it('duplicate stage names are an error', async () => {
    const text = ['name: a', 'merge_method: linear', 'models: [{model: base, parameters: {weight: 1}}]', '---', 'name: a', 'merge_method: linear', 'models: [{model: base, parameters: {weight: 1}}]'].join('\n');
    const e = await errorOf(load(text));
    expect(e.message).toContain("stage name 'a' is already used by stage 1");
  });

  it('a stage the final stage does not use is an error naming it and its line', async () => {
    const text = ['name: unused', 'merge_method: linear', 'models: [{model: base, parameters: {weight: 1}}]', '---', 'merge_method: linear', 'models: [{model: chat, parameters: {weight: 1}}]'].join('\n');
    const e = await errorOf(load(text));
    expect(e.message).toMatch(/:1:1: .*unused.* is not used by the final stage \(the last document, 'stage2'\), so it would never be merged/);
  });

  it('adds an unlisted base model to the inputs without parameters', async () => {
    const r = await load('merge_method: ties\nbase_model: base\nmodels:\n  - model: math\n    parameters: {weight: 1, density: 0.5}\n');
    const srcs = r.final.slices[0].sources;
    expect(srcs.map((s) => [s.ref, s.implicit])).toEqual([['base', true], ['math', false]]);
    expect(srcs[0].parameters).toEqual({});
  });

  it('slices whose sources span different layer counts are an error', async () => {
    const text = ['merge_method: slerp', 'base_model: base', 'slices:', '  - sources:', '      - model: base', '        layer_range: [0, 2]', '      - model: math', '        layer_range: [0, 1]', 'parameters: {t: 0.5}'].join('\n');
    const e = await errorOf(load(text));
    expect(e.message).toContain('field slices[0].sources[1].layer_range: spans 1 layers but the slice');
  });

  it('keeps each document\'s own text for mergekit_config.yml', async () => {
    const parsed = parseRecipeText('# c\nname: a\nmerge_method: linear\nmodels: [{model: base, parameters: {weight: 1}}]\n---\nmerge_method: linear\nmodels: [{model: a, parameters: {weight: 2}}]\n', 'r.yaml', root);
    const { recipe } = resolveParsed(parsed, { cwd: root });
    expect(recipe!.stages[0].text).toBe('name: a\nmerge_method: linear\nmodels: [{model: base, parameters: {weight: 1}}]\n');
    expect(recipe!.stages[1].text).toBe('merge_method: linear\nmodels: [{model: a, parameters: {weight: 2}}]\n');
  });
});

describe('parameter values (spec section 3)', () => {
  it('gradient interpolation follows the spec formula', () => {
    // L = 5 layers, list of 3: layer 1 -> t = 0.25, s = 0.5 -> halfway between list[0] and list[1].
    expect(interpolate([0, 1, 0.5], gradientT(1, 5))).toBeCloseTo(0.5, 12);
    expect(interpolate([0, 1, 0.5], gradientT(4, 5))).toBe(0.5);
    expect(interpolate([0, 1, 0.5], gradientT(3, 5))).toBeCloseTo(0.75, 12);
    expect(interpolate([2, 4], gradientT(0, 1))).toBe(4); // L = 1: t = 1
    expect(interpolate([2, 4], gradientT(null, 7))).toBe(2); // outside the layers: t = 0
    expect(interpolate([3], 0.7)).toBe(3);
  });

  it('filters: first matching substring wins, * and missing filter match all, no match falls through', () => {
    const s = [{ filter: 'self_attn', value: 0.1 }, { filter: 'mlp', value: [0, 1] }, { value: 0.9 }];
    expect(evaluateSetting(s, 'model.layers.0.self_attn.q_proj.weight', 0)).toBe(0.1);
    expect(evaluateSetting(s, 'model.layers.1.mlp.up_proj.weight', 1)).toBe(1);
    expect(evaluateSetting(s, 'model.norm.weight', 0)).toBe(0.9);
    expect(evaluateSetting([{ filter: 'mlp', value: 2 }], 'model.norm.weight', 0)).toBeUndefined();
    expect(evaluateSetting([{ filter: '*', value: 2 }], 'x', 0)).toBe(2);
    const found = lookupParam([{ w: [{ filter: 'mlp', value: 2 }] }, {}, { w: 5 }], 'w', 'model.norm.weight', 0);
    expect(found).toEqual({ value: 5, level: 2 });
    expect(lookupParam([{ w: [{ filter: 'mlp', value: 2 }] }, {}, { w: 5 }], 'w', 'model.layers.0.mlp.x', 0)).toEqual({ value: 2, level: 0 });
  });
});
