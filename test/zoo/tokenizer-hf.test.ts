/**
 * Our tokenizer.json must mean what our encoder does: a Hugging Face tokenizer built from it
 * (tokenizers.js, the JavaScript port of HF tokenizers) gives the same ids on the zoo's own texts.
 */
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { ZooTokenizer } from '../../src/zoo/tokenizer.js';
import { WORD_TOKENS } from '../../src/data/lexicon.js';
import { pretrainDocuments } from '../../src/data/pretrain.js';
import { chatPrompts } from '../../src/data/chat.js';
import { mathProblems } from '../../src/data/math.js';
import { chatExample, mathExample } from '../../src/zoo/train.js';

const texts = [
  ...pretrainDocuments('train', 400, 7),
  ...chatPrompts('train', 150, 7).map((p) => { const e = chatExample(p.prompt, p.response); return `<bos>${e.prompt}${e.target}<eos>`; }),
  ...mathProblems('train', 50, 7).map((p) => { const e = mathExample(p.question, p.answer); return `<bos>${e.prompt}${e.target}<eos>`; }),
  'cats CAT Cat moon-star, sunny sun! a < b <bo\nnew line',
];

describe.each([
  ['characters', new ZooTokenizer()],
  ['whole words', new ZooTokenizer(WORD_TOKENS)],
])('tokenizer.json with %s', (_name, ours) => {
  const hf = new Tokenizer(JSON.parse(JSON.stringify(ours.toJSON())), ours.configJSON());
  it('encodes the corpus, chat and math texts to our ids and decodes them back', () => {
    let words = 0;
    for (const t of texts) {
      const ids = ours.encode(t);
      words += ids.filter((id) => id >= 101).length;
      expect(hf.encode(t, { add_special_tokens: false }).ids).toEqual(ids);
      expect(hf.decode(ids, { skip_special_tokens: false })).toBe(t);
    }
    expect(words > 0).toBe(ours.words.length > 0);
  });
});
