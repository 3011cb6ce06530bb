import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TypedKernels } from '../../src/kernels/typed.js';
import { checkRecipe, runRecipe } from '../../src/merge/engine.js';
import { formatProblem } from '../../src/util/errors.js';
import { tinyLlamaShapes, tmpDir, writeTinyLlama } from '../merge/tiny-llama.js';

const EXAMPLES = path.resolve('examples/recipes');
let root: string;
let modelDirs: Record<string, string>;

beforeAll(async () => {
  root = await tmpDir('mergelab-examples-');
  // 32 layers, like the 7B models the examples name, but 8 wide.
  const shapes = tinyLlamaShapes({ layers: 32 });
  await writeTinyLlama(path.join(root, 'base'), { seed: 1, dtype: 'BF16', shapes });
  await writeTinyLlama(path.join(root, 'math'), { seed: 2, baseSeed: 1, dtype: 'BF16', shapes });
  await writeTinyLlama(path.join(root, 'chat'), { seed: 3, baseSeed: 1, dtype: 'BF16', shapes });
  modelDirs = {
    'mistralai/Mistral-7B-v0.1': path.join(root, 'base'),
    'WizardLM/WizardMath-7B-V1.1': path.join(root, 'math'),
    'Intel/neural-chat-7b-v3-3': path.join(root, 'chat'),
  };
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('examples/recipes', () => {
  it('every example validates against local folders, except the seed as published, which lacks a weight', async () => {
    const files = (await fs.readdir(EXAMPLES)).filter((f) => f.endsWith('.yaml')).sort();
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const f of files) {
      const r = await checkRecipe(path.join(EXAMPLES, f), { modelDirs });
      if (f === 'seed-as-published.yaml') {
        expect(r.problems.map(formatProblem)).toEqual([expect.stringMatching(/:24:5: stage 2: model 'mistral-wizardmath-dare-0\.7-density' \(models\[0\]\): missing required parameter 'weight' for merge_method task_arithmetic/)]);
      } else {
        expect({ f, problems: r.problems }).toEqual({ f, problems: [] });
      }
    }
  });

  it('the seed two-stage example merges end to end', async () => {
    const kernels = new TypedKernels({ threads: 1 });
    const r = await runRecipe(path.join(EXAMPLES, 'seed-two-stage.yaml'), { outDir: path.join(root, 'out'), modelDirs, kernels, seed: 1 });
    await kernels.dispose();
    expect(r.stages.map((s) => s.method)).toEqual(['dare_ties', 'task_arithmetic']);
    expect(await fs.readdir(root)).toEqual(expect.arrayContaining(['out']));
    expect((await fs.readdir(root)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
