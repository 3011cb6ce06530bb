import { describe, expect, it } from 'vitest';
import { CharTokenizer, VOCAB_SIZE, BOS_ID, EOS_ID, USER_ID, ASSISTANT_ID, NEWLINE_ID } from '../../src/zoo/tokenizer.js';
import { UserError } from '../../src/util/errors.js';

describe('CharTokenizer', () => {
  const tok = new CharTokenizer();
  it('round-trips printable ASCII and newlines', () => {
    let all = '\n';
    for (let c = 32; c <= 126; c++) all += String.fromCharCode(c);
    const ids = tok.encode(all);
    expect(ids.length).toBe(96);
    expect(new Set(ids).size).toBe(96);
    expect(Math.max(...ids)).toBe(VOCAB_SIZE - 1);
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
    expect(CharTokenizer.fromJSON(json).vocabSize).toBe(VOCAB_SIZE);
    expect(json.added_tokens.map((t: { content: string }) => t.content)).toContain('<|assistant|>');
    json.model.vocab.a = 7;
    expect(() => CharTokenizer.fromJSON(json, 'x/tokenizer.json')).toThrow(/x\/tokenizer.json: model.vocab\["a"\]/);
    expect(tok.configJSON().chat_template).toContain('<|assistant|>');
  });
});
