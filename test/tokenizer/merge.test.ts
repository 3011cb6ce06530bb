/**
 * Merges of models whose vocabularies differ, worked by hand the way mergekit's
 * tests/test_tokenizer.py sets them up: a base with 8 tokens (3 specials, 5 letters), a chat model
 * that adds <|im_start|> and <|im_end|> as ids 8 and 9, a padded model whose two extra tokens lie
 * past its vocab_size, and a model with an extra plain token 'f'. Every expected row is written in
 * terms of the input rows (mergekit tokenizer/build.py and tokenizer/embed.py give the rules).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/checkpoint/reader.js';
import { TypedKernels } from '../../src/kernels/typed.js';
import { checkRecipe, runRecipe } from '../../src/merge/engine.js';
import { formatProblem } from '../../src/util/errors.js';
import { tmpDir } from '../merge/tiny-llama.js';
import { BASE_VOCAB, SPECIALS, addedEntry, writeTokenizedModel } from './fixtures.js';

const H = 8;
const kernels = new TypedKernels({ threads: 1 });
let root: string;
type Rows = (r: number) => number[];
const inputs: Record<string, { embed: Rows; head: Rows }> = {};

const IM = [
  { id: 8, content: '<|im_start|>', special: true },
  { id: 9, content: '<|im_end|>', special: true },
];

async function rowsOf(dir: string, name: string): Promise<Rows> {
  const c = await openCheckpoint(dir);
  const data = await c.readF32(name);
  await c.close();
  return (r) => Array.from(data.subarray(r * H, (r + 1) * H));
}

beforeAll(async () => {
  root = await tmpDir('mergelab-tokenizer-');
  await writeTokenizedModel(path.join(root, 'base'), { seed: 1, rows: 8, vocab: BASE_VOCAB, added: SPECIALS });
  await writeTokenizedModel(path.join(root, 'chat'), { seed: 2, rows: 10, vocab: BASE_VOCAB, added: [...SPECIALS, ...IM] });
  await writeTokenizedModel(path.join(root, 'padded'), { seed: 3, rows: 8, vocab: BASE_VOCAB, added: [...SPECIALS, { id: 8, content: '<UNUSED_0>', special: false }, { id: 9, content: '<UNUSED_1>', special: false }] });
  await writeTokenizedModel(path.join(root, 'extra'), { seed: 4, rows: 9, vocab: [...BASE_VOCAB, 'f'], added: SPECIALS });
  for (const m of ['base', 'chat', 'padded', 'extra']) {
    inputs[m] = { embed: await rowsOf(path.join(root, m), 'model.embed_tokens.weight'), head: await rowsOf(path.join(root, m), 'lm_head.weight') };
  }
});
afterAll(async () => {
  await kernels.dispose();
  await fs.rm(root, { recursive: true, force: true });
});

async function merge(name: string, recipe: string): Promise<{ dir: string; embed: Float32Array; head: Float32Array; rows: number }> {
  const file = path.join(root, `${name}.yaml`);
  await fs.writeFile(file, recipe + 'dtype: float32\n');
  const dir = path.join(root, 'out', name);
  await runRecipe(file, { outDir: dir, kernels, seed: 1 });
  const c = await openCheckpoint(dir);
  const embed = await c.readF32('model.embed_tokens.weight');
  const head = await c.readF32('lm_head.weight');
  const rows = c.info('model.embed_tokens.weight').shape[0];
  expect(c.info('lm_head.weight').shape).toEqual([rows, H]);
  await c.close();
  return { dir, embed, head, rows };
}

const row = (t: Float32Array, r: number) => Array.from(t.subarray(r * H, (r + 1) * H));
const mean = (...rs: number[][]) => rs[0].map((_, c) => rs.reduce((s, x) => s + x[c], 0) / rs.length);
function expectRow(got: number[], want: number[]): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, c) => expect(Math.abs(g - want[c])).toBeLessThan(1e-6));
}
const json = async (dir: string, f: string) => JSON.parse(await fs.readFile(path.join(dir, f), 'utf8'));

describe('tokenizer_source: union', () => {
  it('base + chat (linear): 10 tokens, rows 0-7 averaged, <|im_start|>/<|im_end|> are the chat rows, files extended', async () => {
    const out = await merge('union2', 'merge_method: linear\nbase_model: base\ntokenizer_source: union\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: chat\n    parameters: {weight: 1}\n');
    expect(out.rows).toBe(10);
    for (const [t, k] of [[out.embed, 'embed'], [out.head, 'head']] as const) {
      for (let r = 0; r < 8; r++) expectRow(row(t, r), mean(inputs.base[k](r), inputs.chat[k](r)));
      // The base lacks ids 8 and 9: its rows are filled with the sole owner's (chat), so the mean is chat's row.
      expectRow(row(t, 8), inputs.chat[k](8));
      expectRow(row(t, 9), inputs.chat[k](9));
    }
    const tok = await json(out.dir, 'tokenizer.json');
    expect(tok.model.vocab).toEqual(Object.fromEntries(BASE_VOCAB.map((t, i) => [t, i])));
    expect(tok.added_tokens).toEqual([...SPECIALS, ...IM].map(addedEntry));
    const cfg = await json(out.dir, 'tokenizer_config.json');
    expect(Object.keys(cfg.added_tokens_decoder)).toEqual(['0', '1', '2', '8', '9']);
    expect(cfg.added_tokens_decoder['8']).toEqual({ content: '<|im_start|>', lstrip: false, normalized: false, rstrip: false, single_word: false, special: true });
    expect(cfg).toMatchObject({ bos_token: '<s>', eos_token: '</s>', tokenizer_class: 'LlamaTokenizer', model_max_length: 2048 });
    expect(await json(out.dir, 'special_tokens_map.json')).toEqual({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
    expect((await json(out.dir, 'config.json')).vocab_size).toBe(10);
    // The file is a working tokenizer: the JavaScript port of HF tokenizers splits the chat markers out.
    const hf = new Tokenizer(tok, cfg);
    expect(hf.encode('<|im_start|>abe<|im_end|>', { add_special_tokens: false }).ids).toEqual([8, 3, 4, 7, 9]);
  });

  it('base + padded + chat: the padded model\'s tokens past its vocab_size stay out (mergekit test_source_union)', async () => {
    const out = await merge('union3', 'merge_method: linear\nbase_model: base\ntokenizer_source: union\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: padded\n    parameters: {weight: 1}\n  - model: chat\n    parameters: {weight: 1}\n');
    expect(out.rows).toBe(10);
    const tok = await json(out.dir, 'tokenizer.json');
    expect(tok.added_tokens.map((a: { content: string }) => a.content)).toEqual(['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>']);
    for (let r = 0; r < 8; r++) expectRow(row(out.embed, r), mean(inputs.base.embed(r), inputs.padded.embed(r), inputs.chat.embed(r)));
    expectRow(row(out.embed, 8), inputs.chat.embed(8));
  });

  it("base + extra + chat (task_arithmetic): 'f' joins as plain token 8, the chat markers follow as 9 and 10", async () => {
    const out = await merge('union-ta', 'merge_method: task_arithmetic\nbase_model: base\ntokenizer_source: union\nmodels:\n  - model: extra\n    parameters: {weight: 1}\n  - model: chat\n    parameters: {weight: 1}\n');
    expect(out.rows).toBe(11);
    const tok = await json(out.dir, 'tokenizer.json');
    expect(tok.added_tokens).toEqual([
      ...SPECIALS.map(addedEntry),
      { id: 8, content: 'f', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
      ...IM.map((a) => addedEntry({ ...a, id: a.id + 1 })),
    ]);
    const { base, extra, chat } = inputs;
    for (let r = 0; r < 8; r++) expectRow(row(out.embed, r), base.embed(r).map((b, c) => b + (extra.embed(r)[c] - b) + (chat.embed(r)[c] - b)));
    // Token 8 ('f'): the base and chat rows are filled with extra's, so both task vectors are 0 there.
    expectRow(row(out.embed, 8), extra.embed(8));
    expectRow(row(out.embed, 9), chat.embed(8));
    expectRow(row(out.embed, 10), chat.embed(9));
    expectRow(row(out.head, 10), chat.head(9));
  });
});

describe('tokenizer_source: base and a model', () => {
  it('base: the stripped base vocabulary, 8 rows', async () => {
    const out = await merge('src-base', 'merge_method: linear\nbase_model: base\ntokenizer_source: base\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: chat\n    parameters: {weight: 1}\n');
    expect(out.rows).toBe(8);
    for (let r = 0; r < 8; r++) expectRow(row(out.embed, r), mean(inputs.base.embed(r), inputs.chat.embed(r)));
    expect((await json(out.dir, 'tokenizer.json')).added_tokens).toEqual(SPECIALS.map(addedEntry));
    expect((await json(out.dir, 'config.json')).vocab_size).toBe(8);
  });

  it("a model: chat's vocabulary, the base filled from chat for the markers (mergekit test_source_model)", async () => {
    const out = await merge('src-chat', 'merge_method: linear\nbase_model: base\ntokenizer_source: chat\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: chat\n    parameters: {weight: 1}\n');
    expect(out.rows).toBe(10);
    expectRow(row(out.embed, 9), inputs.chat.embed(9));
    expect((await json(out.dir, 'tokenizer.json')).added_tokens).toEqual([...SPECIALS, ...IM].map(addedEntry));
  });
});

describe('the tokenizer: block', () => {
  it('per-token sources, force, zero, a new token and pad_to_multiple_of', async () => {
    const out = await merge(
      'block',
      [
        'merge_method: linear',
        'base_model: base',
        'tokenizer:',
        '  source: union',
        '  pad_to_multiple_of: 4',
        '  tokens:',
        '    c: {source: chat, force: true}',
        '    d: {source: base, force: true}',
        '    e: {source: {kind: model_token, model: chat, token_id: 8}, force: true}',
        '    a: {source: {kind: zero}, force: true}',
        '    "<new>": {source: {kind: model_token, model: base, token: "<s>"}}',
        '    b: {force: true}',
        'models:',
        '  - model: base',
        '    parameters: {weight: 1}',
        '  - model: chat',
        '    parameters: {weight: 1}',
        '',
      ].join('\n'),
    );
    const { base, chat } = inputs;
    // 10 tokens + '<new>' (id 10) = 11, padded to 12 rows.
    expect(out.rows).toBe(12);
    expect((await json(out.dir, 'config.json')).vocab_size).toBe(12);
    expectRow(row(out.embed, 5), chat.embed(5)); // c: chat's row for every model
    expectRow(row(out.embed, 6), base.embed(6)); // d: base's
    expectRow(row(out.embed, 7), chat.embed(8)); // e: chat's row 8
    expectRow(row(out.embed, 3), new Array(H).fill(0)); // a: zeros
    expectRow(row(out.embed, 10), base.embed(1)); // <new>: base's <s> row, in no model
    expectRow(row(out.embed, 4), base.embed(4)); // b, forced with no source: the base has it
    expectRow(row(out.embed, 2), mean(base.embed(2), chat.embed(2)));
    // Row 11 pads: each model's mean over its 11 vocabulary rows; linear keeps it the mean of the merged rows.
    expectRow(row(out.embed, 11), mean(...Array.from({ length: 11 }, (_, r) => row(out.embed, r))));
    const tok = await json(out.dir, 'tokenizer.json');
    expect(tok.added_tokens.at(-1)).toEqual({ id: 10, content: '<new>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
  });
});

describe('validate', () => {
  // Problems are data; the assertions read them as the command line renders them.
  const problemsOf = async (text: string) => (await checkRecipe({ text, file: 'v.yaml', dir: root })).problems.map(formatProblem);

  it('different vocabularies and no tokenizer setting: one problem that says what to add', async () => {
    const problems = await problemsOf('merge_method: linear\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: chat\n    parameters: {weight: 1}\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^v\.yaml:1:1: the models' vocabularies differ from 'base's \(8 tokens\): 'chat' \(10 tokens\) adds "<\|im_start\|>", "<\|im_end\|>"/);
    expect(problems[0]).toContain("Add 'tokenizer_source: union'");
    // Tokens past a model's vocab_size have no rows and do not count: the padded model's vocabulary is the base's.
    expect(await problemsOf('merge_method: linear\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: padded\n    parameters: {weight: 1}\n')).toEqual([]);
  });

  it('tokenizer settings are checked before any tensor is read, every problem at once', async () => {
    const text = [
      'merge_method: linear',
      'base_model: base',
      'tokenizer:',
      '  source: nowhere',
      '  tokens:',
      '    c: {source: elsewhere}',
      'models:',
      '  - model: base',
      '    parameters: {weight: 1}',
      '  - model: chat',
      '    parameters: {weight: 1}',
      '',
    ].join('\n');
    const r = await problemsOf(text);
    expect(r.join('\n')).toContain("v.yaml:4:11: tokenizer source 'nowhere' is not one of this stage's models ('base', 'chat')");
    const both = await problemsOf('merge_method: linear\ntokenizer_source: union\ntokenizer: {source: base}\nmodels:\n  - model: base\n    parameters: {weight: 1}\n');
    expect(both.join('\n')).toContain('`tokenizer_source` and `tokenizer` cannot both be given');
    const bad = await problemsOf('merge_method: linear\ntokenizer:\n  source: union\n  tokens:\n    c: {source: {kind: model_token, model: chat}}\n  pad_to: 3\nmodels:\n  - model: base\n    parameters: {weight: 1}\n');
    expect(bad.join('\n')).toMatch(/give exactly one of token_id or token/);
    expect(bad.join('\n')).toMatch(/unknown field 'pad_to'/);
    const tokSrc = await problemsOf('merge_method: linear\nbase_model: base\ntokenizer:\n  tokens:\n    c: {source: elsewhere}\nmodels:\n  - model: base\n    parameters: {weight: 1}\n  - model: chat\n    parameters: {weight: 1}\n');
    expect(tokSrc.join('\n')).toContain("model 'elsewhere' is not one of this stage's models");
  });
});

describe('stages', () => {
  it('a later stage reads the union tokenizer of an earlier one before it exists', async () => {
    const text = [
      'name: joined',
      'merge_method: linear',
      'base_model: base',
      'tokenizer_source: union',
      'models:',
      '  - model: base',
      '    parameters: {weight: 1}',
      '  - model: chat',
      '    parameters: {weight: 1}',
      '---',
      'merge_method: task_arithmetic',
      'base_model: joined',
      'models:',
      '  - model: chat',
      '    parameters: {weight: 0.5}',
      '',
    ].join('\n');
    // Stage 2 needs no setting: the union output numbers its tokens as chat does.
    expect((await checkRecipe({ text, file: 's.yaml', dir: root })).problems).toEqual([]);
    const out = await merge('stages', text.replace(/\n$/, '\n'));
    expect(out.rows).toBe(10);
    const j = (r: number) => mean(inputs.base.embed(r), inputs.chat.embed(r));
    for (const r of [0, 7]) expectRow(row(out.embed, r), j(r).map((v, c) => v + 0.5 * (inputs.chat.embed(r)[c] - v)));
    expectRow(row(out.embed, 8), inputs.chat.embed(8));
  });
});
