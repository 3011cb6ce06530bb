/**
 * The recipe's tokenizer settings, as mergekit reads them (`mergekit/tokenizer/config.py`):
 * `tokenizer_source: union | base | MODEL`, or the `tokenizer:` block with a source, per-token
 * embedding sources (`source`, `force`) and `pad_to_multiple_of`. Unknown fields are errors here
 * as everywhere else in a recipe, so a typo is not silently ignored.
 */
import { z } from 'zod';

const ModelRef = z.string({ error: 'expected a model reference' }).min(1);

const ModelTokenSource = z
  .strictObject({
    kind: z.literal('model_token'),
    model: ModelRef,
    token_id: z.number().int().nonnegative().nullish(),
    token: z.string().nullish(),
  })
  .refine((v) => ((v.token_id ?? null) === null) !== ((v.token ?? null) === null), { error: 'give exactly one of token_id or token' });

const ZeroSource = z.strictObject({ kind: z.literal('zero') });

export const TokenEmbeddingBlock = z.strictObject({
  source: z.union([ModelRef, ModelTokenSource, ZeroSource], { error: 'expected a model reference, {kind: model_token, model, token | token_id} or {kind: zero}' }).nullish(),
  force: z.boolean().default(false),
});

export const TokenizerBlock = z.strictObject({
  source: ModelRef.default('union'),
  tokens: z.record(z.string().min(1), TokenEmbeddingBlock).nullish(),
  pad_to_multiple_of: z.number().int().positive().nullish(),
});

export type TokenizerBlock = z.output<typeof TokenizerBlock>;

/** Where the output vocabulary comes from. */
export type VocabSource = { kind: 'union' } | { kind: 'base' } | { kind: 'model'; ref: string };

/** Where one token's fallback embedding comes from (mergekit `TokenEmbeddingConfig.source`). */
export type TokenSource =
  | { kind: 'zero' }
  | { kind: 'model'; ref: string }
  | { kind: 'model_token'; ref: string; tokenId: number | null; token: string | null };

export interface TokenSetting {
  /** Null: the automatic rule (base, sole owner, or average) picks it. */
  source: TokenSource | null;
  /** Use the fallback for every model, also those that have the token. */
  force: boolean;
}

/** A stage's tokenizer setting, whichever way the recipe wrote it. */
export interface TokenizerSetting {
  source: VocabSource;
  /** Per token, in the order written; their tokens join the output vocabulary when missing. */
  tokens: Array<[string, TokenSetting]>;
  padToMultipleOf: number | null;
  /** Field path of the setting in the document, for messages. */
  field: 'tokenizer_source' | 'tokenizer';
}

function vocabSource(s: string): VocabSource {
  return s === 'union' || s === 'base' ? { kind: s } : { kind: 'model', ref: s };
}

/** The setting of a stage, or null when it has neither field (then the base's tokenizer is copied as is). */
export function tokenizerSetting(tokenizerSource: string | null, block: TokenizerBlock | null): TokenizerSetting | null {
  if (block) {
    return {
      source: vocabSource(block.source),
      tokens: Object.entries(block.tokens ?? {}).map(([tok, t]) => {
        const s = t.source ?? null;
        const source: TokenSource | null =
          s === null ? null : typeof s === 'string' ? { kind: 'model', ref: s } : s.kind === 'zero' ? { kind: 'zero' } : { kind: 'model_token', ref: s.model, tokenId: s.token_id ?? null, token: s.token ?? null };
        return [tok, { source, force: t.force }];
      }),
      padToMultipleOf: block.pad_to_multiple_of ?? null,
      field: 'tokenizer',
    };
  }
  if (tokenizerSource !== null) return { source: vocabSource(tokenizerSource), tokens: [], padToMultipleOf: null, field: 'tokenizer_source' };
  return null;
}
