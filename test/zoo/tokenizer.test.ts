import { describe, expect, it } from 'vitest';
import { ZooTokenizer, CHAR_VOCAB_SIZE, BOS_ID, EOS_ID, USER_ID, ASSISTANT_ID, NEWLINE_ID } from '../../src/zoo/tokenizer.js';
import { UserError } from '../../src/util/errors.js';
import { COPY_PLAN, planTokenizer } from '../../src/zoo/train.js';

describe('ZooTokenizer', () => {
  const tok = new ZooTokenizer();
  it('round-trips printable ASCII and newlines', () => {
    let all = '\n';
    for (let c = 32; c <= 126; c++) all += String.fromCharCode(c);
    const ids = tok.encode(all);
    expect(ids.length).toBe(96);
    expect(new Set(ids).size).toBe(96);
    expect(Math.max(...ids)).toBe(CHAR_VOCAB_SIZE - 1);
    expect(tok.decode(ids)).toBe(all);
  });
  it('encodes special tokens written in text as one id each', () => {
    const ids = tok.encode('<bos><|user|>Hi\n<|assistant|>ok<eos>');
    expect(ids[0]).toBe(BOS_ID);
    expect(ids[1]).toBe(USER_ID);
    expect(ids[4]).toBe(NEWLINE_ID);
    expect(ids[5]).toBe(ASSISTANT_ID);
    expect(ids[ids.length - 1]).toBe(EOS_ID);
    expect(tok.decode(ids)).toBe('<bos><|user|>Hi\n<|assistant|>ok<eos>');
    // A lone '<' that starts no special token is an ordinary character.
    expect(tok.decode(tok.encode('a < b <bo'))).toBe('a < b <bo');
  });
  it('rejects characters outside the vocabulary with a UserError naming the character', () => {
    expect(() => tok.encode('caf\u00e9')).toThrow(UserError);
    expect(() => tok.encode('tab\there')).toThrow(/code 9/);
  });
  it('serialises to tokenizer.json and validates it back', () => {
    const json = JSON.parse(JSON.stringify(tok.toJSON()));
    expect(ZooTokenizer.fromJSON(json).vocabSize).toBe(CHAR_VOCAB_SIZE);
    expect(json.added_tokens.map((t: { content: string }) => t.content)).toContain('<|assistant|>');
    json.model.vocab.a = 7;
    expect(() => ZooTokenizer.fromJSON(json, 'x/tokenizer.json')).toThrow(/x\/tokenizer.json: model.vocab\["a"\]/);
    expect(tok.configJSON().chat_template).toContain('<|assistant|>');
  });
});

describe('ZooTokenizer with whole-word tokens', () => {
  const tok = new ZooTokenizer(['cat', 'dog', 'CAT']);
  it('gives a letter run that is exactly a word one id, and spells every other run', () => {
    const ids = tok.encode('cat cats dog. CAT Cat');
    const pieces = ids.map((id) => tok.idToString(id));
    expect(pieces).toEqual(['cat', ' ', 'c', 'a', 't', 's', ' ', 'dog', '.', ' ', 'CAT', ' ', 'C', 'a', 't']);
    expect(tok.vocabSize).toBe(CHAR_VOCAB_SIZE + 3);
    expect(ids[0]).toBe(CHAR_VOCAB_SIZE);
    expect(tok.decode(ids)).toBe('cat cats dog. CAT Cat');
  });
  it('keeps special tokens and digits next to words', () => {
    const text = '<bos><|user|>Write cat 3 times.\n<|assistant|>cat cat cat<eos>';
    const ids = tok.encode(text);
    expect(ids.filter((id) => id === CHAR_VOCAB_SIZE)).toHaveLength(4);
    expect(tok.decode(ids)).toBe(text);
  });
  it('round-trips through tokenizer.json (BPE without merges, ignore_merges) and rejects a broken one', () => {
    const json = JSON.parse(JSON.stringify(tok.toJSON()));
    expect(json.model.type).toBe('BPE');
    expect(json.model.ignore_merges).toBe(true);
    expect(json.model.merges).toEqual([]);
    const back = ZooTokenizer.fromJSON(json);
    expect(back.words).toEqual(['cat', 'dog', 'CAT']);
    expect(back.encode('dog cat')).toEqual(tok.encode('dog cat'));
    json.model.vocab.CAT = CHAR_VOCAB_SIZE + 7;
    expect(() => ZooTokenizer.fromJSON(json, 'm/tokenizer.json')).toThrow(/m\/tokenizer.json: model.vocab\["CAT"\] is 108, expected 103/);
    const chars = JSON.parse(JSON.stringify(new ZooTokenizer().toJSON()));
    chars.model.type = 'BPE';
    expect(() => ZooTokenizer.fromJSON(chars, 'c/tokenizer.json')).toThrow(/model.type is "BPE", expected WordLevel/);
  });
  it('rejects word tokens that are not letters or are listed twice', () => {
    expect(() => new ZooTokenizer(['ca t'])).toThrow(UserError);
    expect(() => new ZooTokenizer(['cat', 'cat'])).toThrow(/listed twice/);
  });
});

describe('a zoo plan and its tokenizer', () => {
  it('trains with the character tokenizer and refuses a plan whose vocabulary does not match', () => {
    expect(planTokenizer(COPY_PLAN).words).toEqual([]);
    expect(planTokenizer(COPY_PLAN).vocabSize).toBe(COPY_PLAN.model.vocabSize);
    expect(() => planTokenizer({ ...COPY_PLAN, name: 'bad', model: { ...COPY_PLAN.model, vocabSize: 102 } })).toThrow(/zoo plan bad: model.vocabSize 102 does not match its tokenizer's 101/);
  });
});
