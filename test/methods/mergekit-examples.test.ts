/**
 * examples/recipes/mergekit: mergekit's own arcee_fusion example and the mergekit-format recipes for
 * the other newer methods and the tokenizer settings run unchanged, their Hub names mapped to small
 * local BF16 models with --model-dir; and `mergelab merge` takes mergekit-yaml's command line.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseByteSize } from '../../src/cli/commands/merge.js';
import { resolveMergekitOptions } from '../../src/cli/mergekit-flags.js';
import { openCheckpoint } from '../../src/checkpoint/reader.js';
import { TypedKernels } from '../../src/kernels/typed.js';
import { checkRecipe, runRecipe } from '../../src/merge/engine.js';
import { formatProblem } from '../../src/util/errors.js';
import { tmpDir } from '../merge/tiny-llama.js';
import { BASE_VOCAB, SPECIALS, writeTokenizedModel } from '../tokenizer/fixtures.js';

const EXAMPLES = path.resolve('examples/recipes/mergekit');
const IM = [
  { id: 8, content: '<|im_start|>', special: true },
  { id: 9, content: '<|im_end|>', special: true },
];
let root: string;
let modelDirs: Record<string, string>;

beforeAll(async () => {
  root = await tmpDir('mergelab-mk-examples-');
  const plain = { rows: 8, vocab: BASE_VOCAB, added: SPECIALS, dtype: 'BF16' as const };
  modelDirs = {
    'mistralai/Mistral-7B-v0.1': path.join(root, 'base'),
    'WizardLM/WizardMath-7B-V1.1': path.join(root, 'math'),
    'Intel/neural-chat-7b-v3-3': path.join(root, 'chat'),
    'HuggingFaceH4/zephyr-7b-beta': path.join(root, 'zephyr'),
    'teknium/OpenHermes-2.5-Mistral-7B': path.join(root, 'hermes'),
    model_a: path.join(root, 'a'),
    model_b: path.join(root, 'b'),
  };
  await writeTokenizedModel(modelDirs['mistralai/Mistral-7B-v0.1'], { seed: 1, ...plain });
  await writeTokenizedModel(modelDirs['WizardLM/WizardMath-7B-V1.1'], { seed: 2, ...plain });
  await writeTokenizedModel(modelDirs['Intel/neural-chat-7b-v3-3'], { seed: 3, ...plain });
  await writeTokenizedModel(modelDirs['HuggingFaceH4/zephyr-7b-beta'], { seed: 4, ...plain });
  await writeTokenizedModel(modelDirs['teknium/OpenHermes-2.5-Mistral-7B'], { seed: 5, ...plain, rows: 10, added: [...SPECIALS, ...IM] });
  await writeTokenizedModel(modelDirs.model_a, { seed: 6, ...plain });
  await writeTokenizedModel(modelDirs.model_b, { seed: 7, ...plain });
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('examples/recipes/mergekit', () => {
  it('every recipe validates and merges; tokenizer ones give the vocabulary they ask for', async () => {
    const files = (await fs.readdir(EXAMPLES)).filter((f) => f.endsWith('.yml')).sort();
    expect(files).toEqual(['arcee_fusion.yml', 'karcher.yml', 'multislerp.yml', 'nearswap.yml', 'nuslerp.yml', 'ram.yml', 'ramplus_tl.yml', 'sce.yml', 'tokenizer-tokens.yml', 'tokenizer-union.yml']);
    const kernels = new TypedKernels({ threads: 1 });
    try {
      for (const f of files) {
        const file = path.join(EXAMPLES, f);
        expect({ f, problems: (await checkRecipe(file, { modelDirs })).problems }).toEqual({ f, problems: [] });
        const out = path.join(root, 'out', f);
        const r = await runRecipe(file, { outDir: out, modelDirs, kernels, seed: 1, modelCard: true });
        const c = await openCheckpoint(out);
        const rows = c.info('model.embed_tokens.weight').shape[0];
        expect(c.info('model.embed_tokens.weight').dtype).toBe('BF16');
        await c.close();
        const cfg = JSON.parse(await fs.readFile(path.join(out, 'config.json'), 'utf8'));
        // 8 base tokens; the union adds the two ChatML markers; the block adds <|tool|> and pads 11 to 32.
        const want = f === 'tokenizer-union.yml' ? 10 : f === 'tokenizer-tokens.yml' ? 32 : 8;
        expect({ f, rows, vocab: cfg.vocab_size }).toEqual({ f, rows: want, vocab: want });
        const card = await fs.readFile(path.join(out, 'README.md'), 'utf8');
        expect(card).toContain(`merge_method: ${r.stages[0].method}`);
        expect(card).toMatch(/^---\nbase_model:\n- /);
      }
    } finally {
      await kernels.dispose();
    }
    const tok = JSON.parse(await fs.readFile(path.join(root, 'out', 'tokenizer-tokens.yml', 'tokenizer.json'), 'utf8'));
    expect(tok.added_tokens.map((a: { id: number; content: string }) => `${a.id}:${a.content}`)).toEqual(['0:<unk>', '1:<s>', '2:</s>', '8:<|im_start|>', '9:<|im_end|>', '10:<|tool|>']);
  });
});

describe('mergekit-yaml flags', () => {
  it('sizes as mergekit parses them: 5B, 500M, 100K, and 0 for no sharding', () => {
    expect(parseByteSize('5B', 'f')).toBe(5e9);
    expect(parseByteSize('500M', 'f')).toBe(5e8);
    expect(parseByteSize('100k', 'f')).toBe(1e5);
    expect(parseByteSize('2GB', 'f')).toBe(2e9);
    expect(parseByteSize('1MiB', 'f')).toBe(2 ** 20);
    expect(parseByteSize('0', 'f')).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => parseByteSize('5X', '--out-shard-size')).toThrow(/--out-shard-size "5X"/);
  });

  it('OUT_PATH or --out, --seed or --random-seed, devices, and a note per flag without effect', () => {
    const base = { backend: 'auto', outShardSize: '5B' };
    expect(resolveMergekitOptions({ ...base }, 'o').outDir).toBe('o');
    expect(resolveMergekitOptions({ ...base, out: 'o' }, undefined).outDir).toBe('o');
    expect(() => resolveMergekitOptions({ ...base, out: 'p' }, 'o')).toThrow(/OUT_PATH "o" and --out "p"/);
    expect(() => resolveMergekitOptions({ ...base }, undefined)).toThrow(/give OUT_PATH/);
    expect(resolveMergekitOptions({ ...base, randomSeed: '7' }, 'o').seed).toBe('7');
    expect(() => resolveMergekitOptions({ ...base, randomSeed: '7', seed: '8' }, 'o')).toThrow(/disagree/);
    expect(resolveMergekitOptions({ ...base, device: 'cpu' }, 'o').backend).toBe('typed');
    const r = resolveMergekitOptions({ ...base, lazyUnpickle: true, trustRemoteCode: true, cuda: true, safeSerialization: false, copyTokenizer: false, writeModelCard: false, allowCrimes: true, numThreads: '3' }, 'o');
    expect(r).toMatchObject({ copyTokenizer: false, writeModelCard: false, allowCrimes: true, threads: 3, backend: 'auto' });
    expect(r.notes).toEqual([
      expect.stringMatching(/^--cuda: --backend auto takes tfjs-node-gpu/),
      expect.stringMatching(/^--lazy-unpickle has no effect/),
      expect.stringMatching(/^--trust-remote-code has no effect/),
      expect.stringMatching(/^--no-safe-serialization has no effect/),
    ]);
    expect(resolveMergekitOptions({ ...base }, 'o')).toMatchObject({ copyTokenizer: true, writeModelCard: true, allowCrimes: false, notes: [] });
  });

  it('--no-copy-tokenizer leaves the tokenizer out; without a model card there is no README.md', async () => {
    const kernels = new TypedKernels({ threads: 1 });
    const out = path.join(root, 'out', 'bare');
    await runRecipe(path.join(EXAMPLES, 'arcee_fusion.yml'), { outDir: out, modelDirs, kernels, copyTokenizer: false });
    await kernels.dispose();
    const files = await fs.readdir(out);
    expect(files.filter((f) => f.startsWith('tokenizer') || f === 'README.md' || f === 'special_tokens_map.json')).toEqual([]);
    expect(files).toContain('mergekit_config.yml');
  });

  it("mergelab merge CONFIG OUT_PATH with mergekit's flags; a model of another architecture needs --allow-crimes; .bin folders are refused", async () => {
    const tsx = path.resolve('node_modules/.bin/tsx');
    const main = path.resolve('src/cli/main.ts');
    const dirs = Object.entries(modelDirs).flatMap(([k, v]) => ['--model-dir', `${k}=${v}`]);
    const out = path.join(root, 'cli-out');
    const r = await execa(
      tsx,
      [main, 'merge', path.join(EXAMPLES, 'arcee_fusion.yml'), out, '--cuda', '--lazy-unpickle', '--allow-crimes', '--copy-tokenizer', '--random-seed', '3', '--out-shard-size', '1K', '--write-model-card', '--trust-remote-code', ...dirs],
      { reject: false },
    );
    expect(r.exitCode).toBe(0);
    expect(r.stderr.match(/--lazy-unpickle has no effect/g)).toHaveLength(1);
    expect(r.stderr).toContain('--trust-remote-code has no effect');
    expect(r.stdout).toMatch(/backend typed, seed 3/);
    const files = await fs.readdir(out);
    expect(files).toEqual(expect.arrayContaining(['README.md', 'tokenizer.json', 'model.safetensors.index.json']));
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    expect(await fs.readFile(path.join(out, 'README.md'), 'utf8')).toContain('[Arcee Fusion](https://arcee.ai) merge method using [model_a](https://huggingface.co/model_a) as a base');

    // Another architecture in config.json: refused without --allow-crimes; a pickle folder: refused with how to convert.
    const odd = path.join(root, 'odd');
    await fs.cp(modelDirs.model_b, odd, { recursive: true });
    const cfg = JSON.parse(await fs.readFile(path.join(odd, 'config.json'), 'utf8'));
    await fs.writeFile(path.join(odd, 'config.json'), JSON.stringify({ ...cfg, architectures: ['MistralForCausalLM'] }));
    const pickled = path.join(root, 'pickled');
    await fs.mkdir(pickled);
    await fs.writeFile(path.join(pickled, 'pytorch_model.bin'), 'not read');
    const recipe = path.join(root, 'crimes.yml');
    await fs.writeFile(recipe, `models:\n  - model: ${modelDirs.model_a}\n  - model: ${odd}\n  - model: ${pickled}\nmerge_method: karcher\n`);
    const bad = await execa(tsx, [main, 'validate', recipe], { reject: false });
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toContain('holds PyTorch pickle weights (pytorch_model.bin) and no safetensors; convert them to safetensors first');
    expect(bad.stdout).toContain('unpickling a checkpoint runs whatever code it contains');
    await fs.writeFile(recipe, `models:\n  - model: ${modelDirs.model_a}\n  - model: ${odd}\nmerge_method: karcher\n`);
    expect((await checkRecipe(recipe)).problems.map(formatProblem)).toEqual([expect.stringContaining("name different architectures: LlamaForCausalLM ('" + modelDirs.model_a + "'), MistralForCausalLM ('" + odd + "'); mergekit refuses")]);
    expect((await checkRecipe(recipe, { allowCrimes: true })).problems).toEqual([]);
  });
});
