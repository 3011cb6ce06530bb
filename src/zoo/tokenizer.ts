/**
 * The zoo's tokenizer (see .notes/zoo-contract.md): ids 0..5 are specials and newline, then
 * printable ASCII 32..126, then optionally whole words. A run of letters that is exactly one of
 * the words becomes that word's id; any other text is spelled in characters. Whole words make
 * copying a word from the prompt one attention step instead of one per letter (data/zoo/README.md).
 * Special tokens written literally in text encode as one id, so templates can be plain strings.
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
/** Size of the character part of the vocabulary (the whole vocabulary of a tokenizer without words). */
export const CHAR_VOCAB_SIZE = FIRST_ASCII_ID + (126 - 32 + 1);

export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}\n<|assistant|>{% else %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

const LETTER_RUN = /[A-Za-z]+/y;

/** Id of a printable ASCII character code (32..126). */
function asciiId(c: number): number {
  return FIRST_ASCII_ID + c - 32;
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

export class ZooTokenizer {
  readonly vocabSize: number;
  readonly padId = PAD_ID;
  readonly bosId = BOS_ID;
  readonly eosId = EOS_ID;
  readonly words: readonly string[];
  private readonly wordIds: Map<string, number>;

  /** `words`: whole-word tokens after the characters, in id order (letters only, no duplicates). */
  constructor(words: readonly string[] = []) {
    this.wordIds = new Map();
    for (const w of words) {
      if (!/^[A-Za-z]{2,}$/.test(w)) throw new UserError(`tokenizer: word token ${JSON.stringify(w)} must be two or more ASCII letters`);
      if (this.wordIds.has(w)) throw new UserError(`tokenizer: word token ${JSON.stringify(w)} is listed twice`);
      this.wordIds.set(w, CHAR_VOCAB_SIZE + this.wordIds.size);
    }
    this.words = [...words];
    this.vocabSize = CHAR_VOCAB_SIZE + this.words.length;
  }

  /** Encodes text (no <bos> added). Throws UserError on a character outside the vocabulary. */
  encode(text: string): number[] {
    const ids: number[] = [];
    let i = 0;
    outer: while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 60 /* '<' */) {
        for (let s = 0; s < SPECIAL_TOKENS.length; s++) {
          if (text.startsWith(SPECIAL_TOKENS[s], i)) {
            ids.push(s);
            i += SPECIAL_TOKENS[s].length;
            continue outer;
          }
        }
      }
      if (this.wordIds.size > 0 && isLetter(c)) {
        LETTER_RUN.lastIndex = i;
        const run = LETTER_RUN.exec(text)![0];
        const id = this.wordIds.get(run);
        if (id !== undefined) {
          ids.push(id);
          i += run.length;
          continue;
        }
        for (let k = 0; k < run.length; k++) ids.push(asciiId(run.charCodeAt(k)));
        i += run.length;
        continue;
      }
      if (c === 10) ids.push(NEWLINE_ID);
      else if (c >= 32 && c <= 126) ids.push(asciiId(c));
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
    if (id >= FIRST_ASCII_ID && id < CHAR_VOCAB_SIZE) return String.fromCharCode(id - FIRST_ASCII_ID + 32);
    if (id >= CHAR_VOCAB_SIZE && id < this.vocabSize) return this.words[id - CHAR_VOCAB_SIZE];
    throw new UserError(`tokenizer: id ${id} is outside the vocabulary 0..${this.vocabSize - 1}`);
  }

  /**
   * HF tokenizer.json. Characters only: a WordLevel model over single characters. With words: a
   * BPE model without merges and with `ignore_merges`, after a pre-tokenizer that isolates letter
   * runs, so a run found whole in the vocabulary is one token and any other run falls back to its
   * characters, which is exactly `encode`.
   */
  toJSON(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    for (let id = 0; id < this.vocabSize; id++) vocab[id < NEWLINE_ID ? SPECIAL_TOKENS[id] : this.idToString(id)] = id;
    const common = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: null,
    };
    if (this.words.length === 0) {
      return {
        ...common,
        pre_tokenizer: { type: 'Split', pattern: { Regex: '' }, behavior: 'Isolated', invert: false },
        post_processor: null,
        decoder: { type: 'Fuse' },
        model: { type: 'WordLevel', vocab, unk_token: '<pad>' },
      };
    }
    return {
      ...common,
      pre_tokenizer: { type: 'Split', pattern: { Regex: '[A-Za-z]+' }, behavior: 'Isolated', invert: false },
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges: [] },
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

  /** Rebuilds the tokenizer a tokenizer.json describes, checking that its character part is the zoo's. */
  static fromJSON(json: unknown, file = 'tokenizer.json'): ZooTokenizer {
    const vocab = (json as { model?: { vocab?: Record<string, number> } })?.model?.vocab;
    if (!vocab || typeof vocab !== 'object') throw new UserError(`${file}: field model.vocab is missing; expected the zoo's vocabulary`, { file, field: 'model.vocab' });
    const chars = new ZooTokenizer().toJSON().model as { vocab: Record<string, number> };
    for (const [k, v] of Object.entries(chars.vocab)) {
      if (vocab[k] !== v) throw new UserError(`${file}: model.vocab[${JSON.stringify(k)}] is ${vocab[k]}, expected ${v} (not the zoo's tokenizer)`, { file, field: 'model.vocab' });
    }
    const extra = Object.entries(vocab).filter(([k]) => !(k in chars.vocab)).sort((a, b) => a[1] - b[1]);
    extra.forEach(([k, v], i) => {
      if (v !== CHAR_VOCAB_SIZE + i) throw new UserError(`${file}: model.vocab[${JSON.stringify(k)}] is ${v}, expected ${CHAR_VOCAB_SIZE + i} (word ids follow the characters without gaps)`, { file, field: 'model.vocab' });
    });
    const type = (json as { model?: { type?: string } }).model?.type;
    const wanted = extra.length === 0 ? 'WordLevel' : 'BPE';
    if (type !== wanted) throw new UserError(`${file}: model.type is ${JSON.stringify(type)}, expected ${wanted} for a vocabulary ${extra.length === 0 ? 'of characters' : 'with words'}`, { file, field: 'model.type' });
    return new ZooTokenizer(extra.map(([k]) => k));
  }
}
