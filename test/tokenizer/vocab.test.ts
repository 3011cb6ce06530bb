/**
 * The pure parts of the tokenizer module on hand-made vocabularies: stripping, the union's token ids
 * (HF tokenizers' AddedVocabulary id rule), configured tokens, and the embedding fallbacks.
 */
import { describe, expect, it } from 'vitest';
import { tokenizerSetting } from '../../src/tokenizer/config.js';
import { permuteEmbeddings, planEmbeddings, type EmbedModel } from '../../src/tokenizer/embed.js';
import { parseTokenizer, type ModelTokenizer } from '../../src/tokenizer/files.js';
import { addMissingTokens, stripTokenizer, unionTokenizer, vocabById } from '../../src/tokenizer/vocab.js';
import { UserError } from '../../src/util/errors.js';

function tok(vocab: string[], added: Array<{ id: number; content: string; special?: boolean }>, type = 'BPE', merges: string[] = []): ModelTokenizer {
  const model = type === 'Unigram' ? { type, vocab: vocab.map((v) => [v, 0]) } : { type, vocab: Object.fromEntries(vocab.map((v, i) => [v, i])), merges };
  return parseTokenizer(
    {
      json: { model, added_tokens: added.map((a) => ({ id: a.id, content: a.content, single_word: false, lstrip: false, rstrip: false, normalized: !a.special, special: !!a.special })) },
      config: { bos_token: '<s>', added_tokens_decoder: {} },
      specialTokensMap: null,
    },
    'test',
  );
}

const SP = [{ id: 0, content: '<unk>', special: true }, { id: 1, content: '<s>', special: true }];

describe('vocabulary', () => {
  it('strips tokens past vocab_size from the vocabulary, the added tokens and the merges that use them (get_stripped_tokenizer)', () => {
    const t = tok(['<unk>', '<s>', 'a', 'b', 'ab', 'x'], [...SP, { id: 6, content: '<pad>' }], 'BPE', ['a b', 'a x', 'ab x']);
    const s = stripTokenizer(t, 5, "'m'");
    expect([...s.vocab.keys()].sort()).toEqual(['<s>', '<unk>', 'a', 'ab', 'b']);
    expect((s.json.model as { merges: string[] }).merges).toEqual(['a b']);
    expect(s.added.map((a) => a.content)).toEqual(['<unk>', '<s>']);
    expect(stripTokenizer(t, 7, "'m'")).toBe(t);
    expect(() => stripTokenizer(tok(['<unk>', 'a', 'b'], [], 'Unigram'), 2, "'m'")).toThrow(UserError);
  });

  it('union: plain tokens new to the base first (by id), then added tokens; ids as AddedVocabulary gives them', () => {
    const base = tok(['<unk>', '<s>', 'a', 'b'], SP);
    // Added ids 0 and 1 lie inside the model vocabulary (size 4), so the first new id is 4, then 5, ...
    const other = tok(['<unk>', '<s>', 'a', 'b', 'q', 'r'], [...SP, { id: 6, content: '<|x|>', special: true }]);
    const third = tok(['<unk>', '<s>', 'b', 'a'], [...SP, { id: 4, content: 'a', special: true }]);
    const w: string[] = [];
    const u = unionTokenizer(base, [{ ref: 'base', tokenizer: base, vocabSize: 4 }, { ref: 'o', tokenizer: other, vocabSize: 7 }, { ref: 't', tokenizer: third, vocabSize: 5 }], w);
    expect(vocabById(u)).toEqual(['<unk>', '<s>', 'a', 'b', 'q', 'r', '<|x|>']);
    expect(u.added.map((a) => [a.id, a.content, a.special, a.normalized])).toEqual([
      [0, '<unk>', true, false],
      [1, '<s>', true, false],
      // 'a' is a plain base token that a third model lists as added: it keeps id 2 and takes those flags.
      [2, 'a', true, false],
      [4, 'q', false, true],
      [5, 'r', false, true],
      [6, '<|x|>', true, false],
    ]);
    // third numbers 'a' and 'b' the other way round: that changes nothing in the output vocabulary.
    expect(w).toEqual([]);
  });

  it('configured tokens: missing ones join as plain tokens, present ones (even special) stay as they are', () => {
    const t = tok(['<unk>', '<s>', 'a'], [...SP, { id: 3, content: '<|im|>', special: true }]);
    const out = addMissingTokens(t, ['<|im|>', 'a', '<new>']);
    expect(out.added.map((a) => [a.id, a.content, a.special])).toEqual([[0, '<unk>', true], [1, '<s>', true], [3, '<|im|>', true], [4, '<new>', false]]);
    expect(addMissingTokens(t, ['a'])).toBe(t);
    expect((out.config!.added_tokens_decoder as Record<string, unknown>)['4']).toEqual({ content: '<new>', lstrip: false, normalized: true, rstrip: false, single_word: false, special: false });
  });

  it('reads tokenizer_source and the tokenizer block into one setting', () => {
    expect(tokenizerSetting('union', null)).toEqual({ source: { kind: 'union' }, tokens: [], padToMultipleOf: null, field: 'tokenizer_source' });
    expect(tokenizerSetting(null, { source: 'org/model', tokens: { x: { source: { kind: 'model_token', model: 'm', token: 'y' }, force: true } }, pad_to_multiple_of: 8 })).toEqual({
      source: { kind: 'model', ref: 'org/model' },
      tokens: [['x', { source: { kind: 'model_token', ref: 'm', tokenId: null, token: 'y' }, force: true }]],
      padToMultipleOf: 8,
      field: 'tokenizer',
    });
    expect(tokenizerSetting(null, null)).toBeNull();
  });
});

describe('embedding fallbacks (assign_embedding_sources)', () => {
  // Output tokens t0..t4; three models.
  const tokens = ['t0', 't1', 't2', 't3', 't4'];
  const m = (ref: string, perm: number[]): EmbedModel => ({ ref, perm: Int32Array.from(perm), vocab: new Map(tokens.map((t, i) => [t, perm[i]]).filter(([, r]) => (r as number) >= 0) as Array<[string, number]>) });
  // t0 everyone; t1 base and a; t2 a and b (not base); t3 only b; t4 nobody.
  const models = [m('base', [0, 1, -1, -1, -1]), m('a', [0, 1, 2, -1, -1]), m('b', [0, -1, 1, 2, -1])];
  it('the base when it has the token, the sole owner, the mean of the owners, zeros', () => {
    const { plan, problems, unowned } = planEmbeddings({ tokens, outRows: 6, models, base: 'base', settings: new Map() });
    expect(problems).toEqual([]);
    expect(unowned).toEqual(['t4']);
    expect(plan.fallback).toEqual([
      { kind: 'row', ref: 'base', row: 0 },
      { kind: 'row', ref: 'base', row: 1 },
      { kind: 'mean', refs: ['a', 'b'] },
      { kind: 'row', ref: 'b', row: 2 },
      { kind: 'zero' },
    ]);
    // One column per model: base rows 10, 11; a rows 20, 21, 22; b rows 30, 31, 32.
    const data = new Map([
      ['base', { data: Float32Array.from([10, 11]), rows: 2 }],
      ['a', { data: Float32Array.from([20, 21, 22]), rows: 3 }],
      ['b', { data: Float32Array.from([30, 31, 32]), rows: 3 }],
    ]);
    const out = permuteEmbeddings(plan, data, 1);
    // Row 5 pads: the mean of the model's five rows.
    const f32 = (xs: number[]) => xs.map(Math.fround);
    expect(Array.from(out.get('base')!)).toEqual(f32([10, 11, 26.5, 32, 0, (10 + 11 + 26.5 + 32) / 5]));
    expect(Array.from(out.get('a')!)).toEqual(f32([20, 21, 22, 32, 0, (20 + 21 + 22 + 32) / 5]));
    expect(Array.from(out.get('b')!)).toEqual(f32([30, 11, 31, 32, 0, (30 + 11 + 31 + 32) / 5]));
  });
  it('without a base the mean of every owner; force replaces even own rows; a source outside the merge is a problem', () => {
    const noBase = planEmbeddings({ tokens, outRows: 5, models, base: null, settings: new Map() });
    expect(noBase.plan.fallback[1]).toEqual({ kind: 'mean', refs: ['base', 'a'] });
    const forced = planEmbeddings({ tokens, outRows: 5, models, base: 'base', settings: new Map([['t0', { source: { kind: 'model', ref: 'b' }, force: true }]]) });
    const data = new Map([
      ['base', { data: Float32Array.from([10, 11]), rows: 2 }],
      ['a', { data: Float32Array.from([20, 21, 22]), rows: 3 }],
      ['b', { data: Float32Array.from([30, 31, 32]), rows: 3 }],
    ]);
    for (const v of permuteEmbeddings(forced.plan, data, 1).values()) expect(v[0]).toBe(30);
    const bad = planEmbeddings({ tokens, outRows: 5, models, base: 'base', settings: new Map([['t3', { source: { kind: 'model', ref: 'a' }, force: false }], ['t1', { source: { kind: 'model', ref: 'zzz' }, force: false }]]) });
    expect(bad.problems).toEqual([
      'tokenizer.tokens["t1"]: model \'zzz\' is not one of the models merged here (\'base\', \'a\', \'b\')',
      'tokenizer.tokens["t3"]: model \'a\' has no token "t3" (give another model, or {kind: model_token, model: ..., token: ...})',
    ]);
  });
});
