/**
 * `mergelab validate` on the newer methods: required parameters, base-model needs and model counts,
 * every problem of a recipe in one answer, from the safetensors headers alone.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRecipe } from '../../src/merge/engine.js';
import { formatProblem } from '../../src/util/errors.js';
import { tmpDir, writeTinyLlama } from '../merge/tiny-llama.js';

let root: string;
beforeAll(async () => {
  root = await tmpDir('mergelab-newer-validate-');
  await writeTinyLlama(path.join(root, 'base'), { seed: 1 });
  for (const [i, n] of ['a', 'b', 'c'].entries()) await writeTinyLlama(path.join(root, n), { seed: 2 + i, baseSeed: 1 });
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

// Problems are data; the assertions read them as the command line renders them.
const check = async (text: string) => {
  const r = await checkRecipe({ text, file: 'r.yaml', dir: root });
  return { ...r, problems: r.problems.map(formatProblem) };
};

describe('validate: newer methods', () => {
  it('nearswap without a base, with two models and no t: three problems at once', async () => {
    const r = await check('merge_method: nearswap\nmodels:\n  - model: a\n  - model: b\n');
    expect(r.problems).toEqual([
      'r.yaml:1:15: merge_method nearswap needs base_model (the model the task vectors are taken against)',
      'r.yaml:3:3: merge_method nearswap takes exactly 1 model, got 2',
      "r.yaml:1:1: missing required global parameter 't' for merge_method nearswap (give it under the top-level parameters)",
    ]);
  });

  it('nuslerp: weights required, two models besides the base, booleans for its switches', async () => {
    const r = await check('merge_method: nuslerp\nbase_model: base\nparameters:\n  nuslerp_row_wise: 1\nmodels:\n  - model: base\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n');
    expect(r.problems).toEqual([
      "r.yaml:4:21: parameter 'nuslerp_row_wise': Invalid input: expected boolean, received number",
      "r.yaml:9:5: model 'b' (models[2]): missing required parameter 'weight' for merge_method nuslerp (set it in this model's parameters, the slice's, or the top-level parameters; there is no default)",
    ]);
    const three = await check('merge_method: nuslerp\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\n  - model: c\n    parameters: {weight: 1}\n');
    expect(three.problems).toEqual(['r.yaml:3:3: merge_method nuslerp takes exactly 2 models, got 3']);
    // The base listed among the models does not count as one of the two.
    const listed = await check('merge_method: nuslerp\nbase_model: base\nmodels:\n  - model: base\n  - model: a\n    parameters: {weight: 1}\n');
    expect(listed.problems).toEqual(['r.yaml:4:3: merge_method nuslerp takes exactly 2 models besides base_model, got 1']);
  });

  it('arcee_fusion, sce, ram, ramplus_tl: base required, counts, parameter types', async () => {
    expect((await check('merge_method: arcee_fusion\nbase_model: base\nmodels:\n  - model: a\n  - model: b\n')).problems).toEqual([
      'r.yaml:4:3: merge_method arcee_fusion takes exactly 1 model besides base_model, got 2',
    ]);
    expect((await check('merge_method: sce\nparameters:\n  select_topk: half\nmodels:\n  - model: a\n')).problems).toEqual([
      'r.yaml:1:15: merge_method sce needs base_model (the model the task vectors are taken against)',
      "r.yaml:3:16: parameter 'select_topk': Invalid input: expected number, received string",
    ]);
    expect((await check('merge_method: ramplus_tl\nbase_model: base\nparameters:\n  r: [0.1, x]\nmodels:\n  - model: a\n')).problems.join('\n')).toMatch(/r\.yaml:4:\d+: /);
    expect((await check('merge_method: ram\nbase_model: base\nmodels:\n  - model: a\n  - model: b\n')).problems).toEqual([]);
  });

  it('karcher: max_iter a whole number; a per-model weight is ignored with a warning (its mean is unweighted)', async () => {
    const r = await check('merge_method: karcher\nparameters:\n  max_iter: 2.5\nmodels:\n  - model: a\n    parameters: {weight: 2}\n  - model: b\n');
    expect(r.problems).toEqual(["r.yaml:3:13: parameter 'max_iter': max_iter must be a whole number"]);
    expect(r.warnings.join('\n')).toContain("merge_method karcher has no parameter 'weight' (it reads max_iter, tol); ignored");
  });

  it('multislerp needs a weight per model and takes the base apart', async () => {
    const r = await check('merge_method: multislerp\nbase_model: base\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n  - model: c\n    parameters: {weight: 2}\n');
    expect(r.problems).toEqual([
      "r.yaml:6:5: model 'b' (models[1]): missing required parameter 'weight' for merge_method multislerp (set it in this model's parameters, the slice's, or the top-level parameters; there is no default)",
    ]);
  });
});
