import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRecipe, validateRecipe } from '../../src/merge/engine.js';
import { formatProblem } from '../../src/util/errors.js';
import { tinyLlamaShapes, tmpDir, writeTinyLlama } from './tiny-llama.js';

let root: string;
const SEED = `name: wizardmath-dare
models:
  - model: mistralai/Mistral-7B-v0.1
  - model: WizardLM/WizardMath-7B-V1.1
    parameters:
      weight: 1
      density: 0.3
merge_method: dare_ties
base_model: mistralai/Mistral-7B-v0.1
parameters:
  normalize: true
  int8_mask: true
dtype: bfloat16
---
merge_method: task_arithmetic
base_model: mistralai/Mistral-7B-v0.1
models:
  - model: wizardmath-dare
    parameters:
      weight: 1.0
  - model: Intel/neural-chat-7b-v3-3
    parameters:
      weight: 1.0
dtype: bfloat16
`;
let dirs: Record<string, string>;

beforeAll(async () => {
  root = await tmpDir('mergelab-validate-');
  await writeTinyLlama(path.join(root, 'base'), { seed: 1, dtype: 'BF16' });
  await writeTinyLlama(path.join(root, 'math'), { seed: 2, baseSeed: 1, dtype: 'BF16' });
  await writeTinyLlama(path.join(root, 'chat'), { seed: 3, baseSeed: 1, dtype: 'BF16' });
  // A "fine-tune" of another architecture: wider MLP, and no final norm.
  const odd = tinyLlamaShapes({ inter: 16 }).filter(([n]) => n !== 'model.norm.weight');
  await writeTinyLlama(path.join(root, 'odd'), { seed: 4, dtype: 'BF16', shapes: odd });
  await fs.writeFile(path.join(root, 'seed.yaml'), SEED);
  dirs = { 'mistralai/Mistral-7B-v0.1': path.join(root, 'base'), 'WizardLM/WizardMath-7B-V1.1': path.join(root, 'math'), 'Intel/neural-chat-7b-v3-3': path.join(root, 'chat') };
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('validateRecipe', () => {
  it("accepts the seed's chain with --model-dir folders", async () => {
    expect(await validateRecipe(path.join(root, 'seed.yaml'), { modelDirs: dirs })).toEqual([]);
    const r = await checkRecipe(path.join(root, 'seed.yaml'), { modelDirs: dirs });
    expect(r.stages).toEqual(['wizardmath-dare', 'stage2']);
  });

  it('reports every problem at once, across stages and kinds', async () => {
    const bad = SEED.replace('density: 0.3', 'density: 1.3')
      .replace('    parameters:\n      weight: 1.0\n  - model: Intel', '  - model: Intel')
      .replace('      weight: 1.0\ndtype', '      weight: 1.0\n  - model: odd\n    parameters: {weight: 1}\n  - model: nowhere\n    parameters: {weight: 1}\ndtype');
    await fs.writeFile(path.join(root, 'bad.yaml'), bad);
    const problems = (await validateRecipe(path.join(root, 'bad.yaml'), { modelDirs: dirs, cwd: root })).map(formatProblem);
    const all = problems.join('\n');
    expect(all).toContain("field models[3].model: model 'nowhere' is neither a stage name");
    expect(all).toContain("stage 1 (wizardmath-dare): model 'WizardLM/WizardMath-7B-V1.1' (models[1]): density 1.3 is outside (0, 1]");
    expect(all).toContain("stage 2: model 'wizardmath-dare' (models[0]): missing required parameter 'weight'");
    expect(all).toMatch(/model 'odd' \(models\[2\]\): \d+ tensors differ in shape from 'mistralai\/Mistral-7B-v0.1' \(.*model\.layers\.0\.mlp\.gate_proj\.weight \[16, 8\] vs \[12, 8\]/);
    expect(all).toContain("model 'odd' (models[2]) has no tensor 'model.norm.weight'");
    expect(problems.length).toBeGreaterThanOrEqual(5);
    for (const p of problems) expect(p).toMatch(/bad\.yaml:\d+:\d+: /);
  });

  it('a YAML error is returned as a problem with line and column', async () => {
    expect((await validateRecipe({ text: 'merge_method: ties\nmodels: [a\n', file: 'y.yaml' })).map(formatProblem)).toEqual([expect.stringMatching(/^y\.yaml:3:1: YAML syntax error/)]);
  });
});

describe('CLI', () => {
  const tsx = path.resolve('node_modules/.bin/tsx');
  const main = path.resolve('src/cli/main.ts');
  const flags = () => Object.entries(dirs).flatMap(([k, v]) => ['--model-dir', `${k}=${v}`]);

  it('validate prints every problem and exits 1, or ok and 0', async () => {
    const bad = await execa(tsx, [main, 'validate', path.join(root, 'bad.yaml'), ...flags()], { reject: false, cwd: root });
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(/^\d+ problems:/);
    expect(bad.stdout).toContain('density 1.3 is outside (0, 1]');
    const ok = await execa(tsx, [main, 'validate', path.join(root, 'seed.yaml'), ...flags()], { reject: false });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toBe('ok: 2 stages (wizardmath-dare -> stage2)');
  });

  it('merge writes the output and a summary with backend, seed and throughput; a bad recipe exits 1 (a problem with the input) with no folder', async () => {
    const out = path.join(root, 'cli-out');
    const r = await execa(tsx, [main, 'merge', path.join(root, 'seed.yaml'), '--out', out, '--seed', '9', '--backend', 'typed', '--out-shard-size', '2KB', ...flags()], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/backend typed, seed 9, [\d.]+ s, [\d.]+ GB read, [\d.]+ GB\/s/);
    expect(await fs.readdir(out)).toContain('model.safetensors.index.json');
    const fail = await execa(tsx, [main, 'merge', path.join(root, 'bad.yaml'), '--out', path.join(root, 'cli-bad'), ...flags()], { reject: false, cwd: root });
    expect(fail.exitCode).toBe(1);
    expect(fail.stderr).toContain("model 'nowhere' is neither a stage name");
    await expect(fs.access(path.join(root, 'cli-bad'))).rejects.toThrow();
  });
});
