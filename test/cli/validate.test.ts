import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { listMethods } from '../../src/methods/registry.js';
import { checkExperimentFile } from '../../src/sweep/check.js';
import { editDistance, nearest } from '../../src/util/suggest.js';
import { tempDir, tinyZoo } from '../sweep/helpers.js';
import { REPO, mergelab } from './helpers.js';

/** Three mistakes in one experiment: a placeholder typo, an unknown suite, a method typo in an axis. */
const THREE = `name: three-mistakes
models:
  base: zoo:base
  math: zoo:math
  chat: zoo:chat
seeds: [1, 2]
eval:
  suites: [lm, chats]
  limit: 2
variants:
  chained:
    recipe: |
      name: math_dare
      merge_method: \${method}
      base_model: \${base}
      models:
        - model: \${math}
          parameters: {weight: 1, density: \${densty}}
      ---
      merge_method: task_arithmetic
      base_model: \${base}
      models:
        - model: math_dare
          parameters: {weight: 1}
        - model: \${chat}
          parameters: {weight: \${w}}
    sweep:
      grid:
        method: [dare_ties, dare_tie]
        density: [0.3, 0.7]
        w: [0.5, 1]
`;

let zoo: string;
let work: string;
beforeAll(async () => {
  zoo = await tinyZoo();
  work = await tempDir('validate');
});

describe('every mistake at once, where it is', () => {
  it('the three-mistake experiment: all three in one run, each at the text that is wrong, once, with its points and the nearest name', async () => {
    const file = path.join(work, 'three.yaml');
    await fs.writeFile(file, THREE);
    const expected = [
      // The suite, in eval.suites.
      `${file}:8:16: field eval.suites[1]: eval suite "chats": no task description at ${path.join(REPO, 'evals', 'chats.yaml')} (known suites: chat, lm, math) (did you mean 'chat'?)`,
      // The typo itself, inside the recipe block (line 18), not a placeholder that carried it.
      `${file}:18:44: field variants.chained.recipe: unknown placeholder \${densty}; known names: base (model), math (model), chat (model), method (axis), density (axis), w (axis) (did you mean 'density'?)`,
      // The bad method comes from an axis value: line 29, at \`dare_tie\`, found in half the points.
      // The known methods are every built-in one, in the registry's order.
      `${file}:29:29: variant chained, stage 1 (math_dare), field merge_method: unknown merge_method "dare_tie"; known methods: ${listMethods().join(', ')} (did you mean 'dare_ties'?) [4 of 8 points]`,
    ];
    const v = await mergelab(['validate', file, '--zoo', zoo]);
    expect(v.exitCode).toBe(1);
    expect(v.stdout).toBe(`3 problems:\n${expected.map((l) => `  - ${l}`).join('\n')}`);
    const dry = await mergelab(['run', file, '--zoo', zoo, '--dry-run', '--reports', path.join(work, 'reports')]);
    expect(dry.exitCode).toBe(1);
    expect(dry.stderr).toBe(`mergelab: 3 problems in ${file}:\n${expected.map((l) => `  - ${l}`).join('\n')}`);
    expect(dry.stderr).not.toMatch(/^\s+at /m);
  });

  it('a bad value from an axis points at that value; a problem of the template at the template', async () => {
    const file = path.join(work, 'values.yaml');
    await fs.writeFile(file, THREE.replace('[lm, chats]', '[lm]').replace('${densty}', '${density}').replace('[dare_ties, dare_tie]', '[dare_ties]').replace('density: [0.3, 0.7]', 'density: [0.3, 1.7]').replace('        - model: math_dare\n          parameters: {weight: 1}\n', '        - model: math_dare\n'));
    const r = await checkExperimentFile(file, { zooDir: zoo });
    const lines = r.problems.map((p) => `${p.line}:${p.col} ${p.message}${p.points ? ` [${p.points.count}/${p.points.of}]` : ''}`);
    // The missing weight is where the model entry is written in the recipe (line 23), in all 4
    // points; density 1.7 at its place in the axis (line 29), in the 2 points that use it.
    expect(lines).toEqual([
      expect.stringMatching(/^23:11 stage 2: model 'math_dare' \(models\[0\]\): missing required parameter 'weight' .*\[4\/4\]$/),
      expect.stringMatching(/^29:24 stage 1 \(math_dare\): model 'math' \(models\[0\]\): density 1\.7 is outside \(0, 1\].*\[2\/4\]$/),
    ]);
  });

  it('unknown names get the nearest known one: fields, model names, baselines', async () => {
    const recipe = path.join(work, 'fields.yaml');
    await fs.writeFile(recipe, `merge_method: task_arithmetic\nbase_model: ${zoo}/base\nmodels:\n  - model: ${zoo}/math\n    paramters: {weight: 1}\n`);
    const r = await mergelab(['validate', recipe]);
    expect(r.stdout).toContain(`${recipe}:5:5: field models[0].paramters: unknown field 'paramters' (did you mean 'parameters'?)`);
    const exp = path.join(work, 'names.yaml');
    await fs.writeFile(exp, THREE.replace('[lm, chats]', '[lm]').replace('${densty}', '${density}').replace('[dare_ties, dare_tie]', '[dare_ties]').replace('        - model: ${chat}', '        - model: chatt').replace('seeds: [1, 2]', 'seeds: [1, 2]\nbaselines: [bse]\nevall: {}'));
    const e = await mergelab(['validate', exp, '--zoo', zoo]);
    // A field typo stops the reading of the file (its shape is wrong), so it is said alone.
    expect(e.stdout).toContain("field evall: unknown field 'evall'");
    expect(e.stdout).toContain("(did you mean 'eval'?)");
    await fs.writeFile(exp, (await fs.readFile(exp, 'utf8')).replace('evall: {}\n', ''));
    const e2 = await mergelab(['validate', exp, '--zoo', zoo]);
    expect(e2.stdout).toContain("field baselines[0]: unknown model 'bse'; models: base, math, chat (did you mean 'base'?)");
    expect(e2.stdout).toMatch(/model 'chatt' is neither a stage name .*\(did you mean 'chat'\?\) \[all 4 points\]/);
  });

  it('a bad --model-dir folder does not hide the recipe\'s other problems, and is said once', async () => {
    const empty = path.join(work, 'empty-model');
    await fs.mkdir(empty, { recursive: true });
    const r = await mergelab([
      'validate',
      path.join(REPO, 'examples/recipes/seed-as-published.yaml'),
      '--model-dir',
      `mistralai/Mistral-7B-v0.1=${empty}`,
      '--model-dir',
      `WizardLM/WizardMath-7B-V1.1=${zoo}/math`,
      '--model-dir',
      `Intel/neural-chat-7b-v3-3=${zoo}/chat`,
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout.match(/no model\.safetensors/g)).toHaveLength(1);
    expect(r.stdout).toContain("stage 2: model 'mistral-wizardmath-dare-0.7-density' (models[0]): missing required parameter 'weight'");
  });

  it('a relative --zoo is read from where the command runs, wherever the experiment file is', async () => {
    // The experiment sits outside the repository; --zoo names the committed zoo relative to it.
    const file = path.join(work, 'elsewhere', 'seed-repro.yaml');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.copyFile(path.join(REPO, 'experiments/seed-repro.yaml'), file);
    const r = await mergelab(['validate', file, '--zoo', 'data/zoo'], { cwd: REPO });
    expect(r.all).toMatch(/^ok: experiment seed-repro: 133 points/m);
    expect(r.exitCode).toBe(0);
  });

  it('nearest: typos within a third of the length, not other names', () => {
    expect(editDistance('dare_tie', 'dare_ties')).toBe(1);
    expect(editDistance('desnity', 'density')).toBe(1); // a swap costs one edit
    expect(nearest('dare_tie', ['ties', 'dare_ties', 'dare_linear'])).toBe('dare_ties');
    expect(nearest('chats', ['math', 'chat', 'lm'])).toBe('chat');
    expect(nearest('DARE-TIES', ['dare_ties'])).toBe('dare_ties');
    expect(nearest('slerp', ['linear', 'ties'])).toBeUndefined();
    expect(nearest('x', ['y', 'lm'])).toBe('y');
    expect(nearest('zz', ['math'])).toBeUndefined();
  });
});
