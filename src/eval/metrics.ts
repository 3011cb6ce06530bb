/**
 * Scoring functions, pure: exact match with lm-eval's normalisations, IFEval's prompt- and
 * instruction-level accuracy, perplexity from summed NLL.
 */
import type { ExactMatchSpec } from './task.js';
import { compileRegex } from './regex.js';
import { checkAll, checkAllLoose } from '../ifeval/registry.js';

const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/** Normalises a string the way HF `exact_match` does: regexes removed, then case, then punctuation. */
export function normalizeForMatch(s: string, spec: Omit<ExactMatchSpec, 'metric'>): string {
  let out = s;
  for (const r of spec.regexes_to_ignore) out = out.replace(compileRegex(r, 'g'), '');
  if (spec.ignore_case) out = out.toLowerCase();
  if (spec.ignore_punctuation) out = out.replace(PUNCTUATION, '');
  return out;
}

export function exactMatch(prediction: string, reference: string, spec: Omit<ExactMatchSpec, 'metric'>): boolean {
  return normalizeForMatch(prediction, spec) === normalizeForMatch(reference, spec);
}

export interface IfevalVerdict { strict: boolean[]; loose: boolean[] }

export function ifevalVerdict(response: string, ids: readonly string[], kwargs: readonly unknown[]): IfevalVerdict {
  return { strict: checkAll(response, ids, kwargs), loose: checkAllLoose(response, ids, kwargs) };
}

/**
 * Prompt level: share of prompts whose every instruction is followed. Instruction level: share
 * of all instructions (pooled across prompts) that are followed.
 */
export function ifevalAggregate(verdicts: readonly IfevalVerdict[]): Record<'prompt_level_strict' | 'prompt_level_loose' | 'inst_level_strict' | 'inst_level_loose', number> {
  const mean = (xs: boolean[]) => (xs.length ? xs.filter(Boolean).length / xs.length : NaN);
  return {
    prompt_level_strict: mean(verdicts.map((v) => v.strict.every(Boolean))),
    prompt_level_loose: mean(verdicts.map((v) => v.loose.every(Boolean))),
    inst_level_strict: mean(verdicts.flatMap((v) => v.strict)),
    inst_level_loose: mean(verdicts.flatMap((v) => v.loose)),
  };
}

/** Corpus-level perplexity: total NLL over total tokens (not a mean of per-text perplexities). */
export function perplexityMetrics(scores: ReadonlyArray<{ nll: number; tokens: number }>, chars: number): Record<'nll_per_token' | 'perplexity' | 'bits_per_char', number> {
  const nll = scores.reduce((s, x) => s + x.nll, 0);
  const tokens = scores.reduce((s, x) => s + x.tokens, 0);
  const perTok = nll / tokens;
  return { nll_per_token: perTok, perplexity: Math.exp(perTok), bits_per_char: nll / Math.LN2 / chars };
}
