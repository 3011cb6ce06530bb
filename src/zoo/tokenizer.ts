/**
 * Character-level tokenizer of the zoo (see .notes/zoo-contract.md): ids 0..5 are specials and
 * newline, then printable ASCII 32..126. Special tokens written literally in text encode as one id,
 * so templates can be plain strings.
 */
import { UserError } from '../util/errors.js';

export const PAD_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;
export const USER_ID = 3;
export const ASSISTANT_ID = 4;
export const NEWLINE_ID = 5;
const FIRST_ASCII_ID = 6;

export const SPECIAL_TOKENS = ['<pad>', '<bos>', '<eos>', '<|user|>', '<|assistant|>'] as const;
export const VOCAB_SIZE = FIRST_ASCII_ID + (126 - 32 + 1);

export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}\n<|assistant|>{% else %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

export class CharTokenizer {
  readonly vocabSize = VOCAB_SIZE;
  readonly padId = PAD_ID;
  readonly bosId = BOS_ID;
  readonly eosId = EOS_ID;

  /** Encodes text (no <bos> added). Throws UserError on a character outside the vocabulary. */
  encode(text: string): number[] {
    const ids: number[] = [];
    let i = 0;
    outer: while (i < text.length) {
      if (text.charCodeAt(i) === 60 /* '<' */) {
        for (let s = 0; s < SPECIAL_TOKENS.length; s++) {
          if (text.startsWith(SPECIAL_TOKENS[s], i)) {
            ids.push(s);
            i += SPECIAL_TOKENS[s].length;
            continue outer;
          }
        }
      }
      const c = text.charCodeAt(i);
      if (c === 10) ids.push(NEWLINE_ID);
      else if (c >= 32 && c <= 126) ids.push(FIRST_ASCII_ID + c - 32);
      else throw new UserError(`tokenizer: character ${JSON.stringify(text[i])} (code ${c}) at offset ${i} is not in the zoo vocabulary (printable ASCII and newline only)`);
      i++;
    }
    return ids;
  }

  /** Decodes ids; specials other than pad are written as their strings, pad is dropped. */
  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let k = 0; k < ids.length; k++) s += this.idToString(ids[k]);
    return s;
  }

  idToString(id: number): string {
    if (id === PAD_ID) return '';
    if (id < NEWLINE_ID) return SPECIAL_TOKENS[id];
    if (id === NEWLINE_ID) return '\n';
    if (id >= FIRST_ASCII_ID && id < VOCAB_SIZE) return String.fromCharCode(id - FIRST_ASCII_ID + 32);
    throw new UserError(`tokenizer: id ${id} is outside the vocabulary 0..${VOCAB_SIZE - 1}`);
  }

  /** HF-style tokenizer.json (a WordLevel model over single characters with added special tokens). */
  toJSON(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    for (let id = 0; id < VOCAB_SIZE; id++) vocab[id < NEWLINE_ID ? SPECIAL_TOKENS[id] : this.idToString(id)] = id;
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: null,
      pre_tokenizer: { type: 'Split', pattern: { Regex: '' }, behavior: 'Isolated', invert: false },
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'WordLevel', vocab, unk_token: '<pad>' },
    };
  }

  configJSON(): Record<string, unknown> {
    return {
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: '<bos>',
      eos_token: '<eos>',
      pad_token: '<pad>',
      unk_token: '<pad>',
      add_bos_token: true,
      add_eos_token: false,
      model_max_length: 512,
      chat_template: CHAT_TEMPLATE,
    };
  }

  /** Checks that a tokenizer.json describes this exact vocabulary, so a model is never paired with a different one. */
  static fromJSON(json: unknown, file = 'tokenizer.json'): CharTokenizer {
    const tok = new CharTokenizer();
    const vocab = (json as { model?: { vocab?: Record<string, number> } })?.model?.vocab;
    if (!vocab || typeof vocab !== 'object') throw new UserError(`${file}: field model.vocab is missing; expected the zoo's character vocabulary`, { file, field: 'model.vocab' });
    const expected = tok.toJSON().model as { vocab: Record<string, number> };
    for (const [k, v] of Object.entries(expected.vocab)) {
      if (vocab[k] !== v) throw new UserError(`${file}: model.vocab[${JSON.stringify(k)}] is ${vocab[k]}, expected ${v} (not the zoo's character tokenizer)`, { file, field: 'model.vocab' });
    }
    if (Object.keys(vocab).length !== VOCAB_SIZE) throw new UserError(`${file}: model.vocab has ${Object.keys(vocab).length} entries, expected ${VOCAB_SIZE}`, { file, field: 'model.vocab' });
    return tok;
  }
}
