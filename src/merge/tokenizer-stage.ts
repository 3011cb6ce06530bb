/**
 * A stage's tokenizer, decided from the inputs' tokenizer files and safetensors headers before any
 * tensor is read: the output vocabulary (mergekit `build_tokenizer`), each input's permutation into
 * it, the fallback rows of the tokens a model lacks, the planned shapes of the embedding tensors,
 * and the tokenizer files the output folder gets. Without a tokenizer setting, inputs whose
 * vocabularies differ are reported (a problem for validate, a warning for merge, which then does as
 * mergekit does: the embeddings' common rows and the base's tokenizer).
 */
import type { HeaderView, StagePlan } from './plan.js';
import { isEmbeddingTensor } from '../checkpoint/names.js';
import type { ResolvedStage } from '../recipe/recipe.js';
import type { Problem } from '../util/errors.js';
import type { TokenSetting, TokenizerSetting } from '../tokenizer/config.js';
import { planEmbeddings, type EmbedModel, type EmbedPlan } from '../tokenizer/embed.js';
import { SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG, TOKENIZER_JSON, usedVocab, type ModelTokenizer } from '../tokenizer/files.js';
import { addMissingTokens, stripTokenizer, unionTokenizer, vocabById } from '../tokenizer/vocab.js';

/** Token-indexed tensors (embeddings and output heads; not GPT-2's position table `wpe`). */
export function isVocabTensor(name: string): boolean {
  return isEmbeddingTensor(name) && !/(^|\.)wpe(\.|$)/.test(name);
}

export interface StageTokenizer {
  setting: TokenizerSetting;
  /** The tokenizer written with the output. */
  output: ModelTokenizer;
  vocabLen: number;
  outRows: number;
  /** Fallback plan for the models merged into one tensor (the base first). */
  embedPlan(models: string[], base: string | null): EmbedPlan;
  /** tokenizer.json, tokenizer_config.json and (when the source has one) special_tokens_map.json. */
  files: Record<string, string>;
}

export interface TokenizerCheck {
  tokenizer: StageTokenizer | null;
  problems: Problem[];
  warnings: string[];
  /** The tokenizer the stage's output will carry (for stages that read it), null when unknown. */
  output: ModelTokenizer | null;
}

/** config.json's vocab_size (or text_config's), the rows the model's embeddings are meant to have. */
function configVocabSize(view: HeaderView | undefined): number | null {
  const c = view?.config;
  const v = c?.vocab_size ?? (c?.text_config as Record<string, unknown> | undefined)?.vocab_size;
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null;
}

/** Rows of the model's first token-indexed tensor, or null when it has none. */
function embedRows(view: HeaderView | undefined): number | null {
  if (!view) return null;
  const name = view.tensorNames().find(isVocabTensor);
  return name === undefined ? null : view.info(name).shape[0];
}

/** Every model of the stage, the base first, then in recipe order. */
function stageRefs(stage: ResolvedStage): string[] {
  const refs: string[] = [];
  if (stage.baseModel !== null) refs.push(stage.baseModel);
  for (const s of stage.slices) for (const src of s.sources) if (!refs.includes(src.ref)) refs.push(src.ref);
  return refs;
}

function describeDifference(a: Map<string, number>, b: Map<string, number>): string {
  const only = [...b.keys()].filter((t) => !a.has(t));
  const moved = [...b.keys()].filter((t) => a.has(t) && a.get(t) !== b.get(t));
  const missing = [...a.keys()].filter((t) => !b.has(t));
  const show = (xs: string[]) => xs.slice(0, 4).map((t) => JSON.stringify(t)).join(', ') + (xs.length > 4 ? `, ... (${xs.length})` : '');
  const parts: string[] = [];
  if (only.length) parts.push(`adds ${show(only)}`);
  if (missing.length) parts.push(`lacks ${show(missing)}`);
  if (moved.length) parts.push(`numbers ${show(moved)} differently`);
  return parts.join('; ');
}

function withoutSetting(stage: ResolvedStage, plan: StagePlan, inputs: Record<string, ModelTokenizer | null>, views: Record<string, HeaderView>, strict: boolean): TokenizerCheck {
  const refs = stageRefs(stage);
  const ref0 = plan.configFrom || refs[0];
  const out: TokenizerCheck = { tokenizer: null, problems: [], warnings: [], output: inputs[ref0] ?? null };
  const lp = stage.label ? `${stage.label}: ` : '';
  const size = (ref: string) => configVocabSize(views[ref]) ?? embedRows(views[ref]) ?? inputs[ref]?.vocab.size ?? 0;
  const differs: string[] = [];
  const t0 = inputs[ref0];
  if (refs.every((r) => inputs[r])) {
    const v0 = usedVocab(t0!, size(ref0));
    for (const r of refs) {
      if (r === ref0) continue;
      const v = usedVocab(inputs[r]!, size(r));
      const d = describeDifference(v0, v);
      if (d) differs.push(`'${r}' (${v.size} tokens) ${d}`);
    }
  } else {
    const rows0 = embedRows(views[ref0]);
    for (const r of refs) {
      const rows = embedRows(views[r]);
      if (r !== ref0 && rows !== null && rows0 !== null && rows !== rows0) differs.push(`'${r}' has ${rows} embedding rows`);
    }
  }
  if (!differs.length) return out;
  const msg =
    `${lp}the models' vocabularies differ from '${ref0}'s (${t0 ? usedVocab(t0, size(ref0)).size + ' tokens' : embedRows(views[ref0]) + ' rows'}): ${differs.join('; ')}. ` +
    `Without a tokenizer setting the merge keeps the rows every model has and '${ref0}'s tokenizer: tokens only some models have lose their rows, and tokens numbered differently are mixed up. ` +
    `Add 'tokenizer_source: union' (every model's tokens, rows a model lacks filled from the others), 'tokenizer_source: base' (the base's vocabulary) or a 'tokenizer:' block to the recipe`;
  if (strict) out.problems.push({ ...stage.doc.pos([]), message: `${msg}, or pass --allow-crimes (allow_crimes in an experiment) to merge them that way anyway` });
  else out.warnings.push(`${stage.doc.where([])}: ${msg}`);
  return out;
}

/**
 * Plan the tokenizer of one stage. `inputs` holds each model's tokenizer (null when its folder has
 * none); `views` the headers. With a setting, the plan's token-indexed tensors are resized to the
 * output vocabulary and its config's vocab_size set, in place.
 */
export function planStageTokenizer(
  stage: ResolvedStage,
  plan: StagePlan,
  inputs: Record<string, ModelTokenizer | null>,
  views: Record<string, HeaderView>,
  opts: { strict?: boolean } = {},
): TokenizerCheck {
  const setting = stage.tokenizer;
  if (!setting) return withoutSetting(stage, plan, inputs, views, opts.strict ?? false);
  const lp = stage.label ? `${stage.label}: ` : '';
  const at = (field: Array<string | number>) => `${stage.doc.where(field)}: ${lp}`;
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const fail = (): TokenizerCheck => ({ tokenizer: null, problems, warnings, output: null });
  const refs = stageRefs(stage);
  const baseRef = stage.baseModel ?? refs[0];
  const size = (ref: string) => configVocabSize(views[ref]) ?? inputs[ref]?.vocab.size ?? 0;

  const baseTok = inputs[baseRef];
  if (!baseTok) {
    problems.push({ ...stage.doc.pos([setting.field]), message: `${lp}${setting.field} needs the tokenizer of '${baseRef}' (the base), but its folder has no ${TOKENIZER_JSON}` });
    return fail();
  }
  let stripped: ModelTokenizer;
  try {
    stripped = stripTokenizer(baseTok, size(baseRef), `'${baseRef}'`);
  } catch (e) {
    problems.push({ ...stage.doc.pos([setting.field]), message: `${lp}${(e as Error).message}` });
    return fail();
  }
  const own = new Map<string, ModelTokenizer>();
  for (const r of refs) {
    if (r === baseRef) own.set(r, stripped);
    else if (inputs[r]) own.set(r, inputs[r]!);
    else {
      warnings.push(`${at([setting.field])}model '${r}' has no ${TOKENIZER_JSON}; its vocabulary is taken to be the base's, as mergekit does`);
      own.set(r, stripped);
    }
  }

  let output: ModelTokenizer;
  const src = setting.source;
  const srcField = setting.field === 'tokenizer' ? ['tokenizer', 'source'] : ['tokenizer_source'];
  if (src.kind === 'union') {
    output = unionTokenizer(stripped, refs.map((r) => ({ ref: r, tokenizer: own.get(r)!, vocabSize: size(r) })), warnings);
  } else if (src.kind === 'base') output = stripped;
  else {
    if (!refs.includes(src.ref)) {
      problems.push({ ...stage.doc.pos(srcField), message: `${lp}tokenizer source '${src.ref}' is not one of this stage's models (${refs.map((r) => `'${r}'`).join(', ')}); use union, base or one of them` });
      return fail();
    }
    const t = inputs[src.ref];
    if (!t) {
      problems.push({ ...stage.doc.pos(srcField), message: `${lp}tokenizer source '${src.ref}' has no ${TOKENIZER_JSON} in its folder` });
      return fail();
    }
    output = t;
  }
  output = addMissingTokens(output, setting.tokens.map(([tok]) => tok));

  const tokens = vocabById(output);
  const vocabLen = tokens.length;
  const gaps = tokens.filter((t) => t === undefined).length;
  if (gaps) warnings.push(`${at([setting.field])}the output vocabulary has ${gaps} unused id(s) below ${vocabLen}; their rows are zeros`);
  const pad = setting.padToMultipleOf;
  const outRows = pad && vocabLen % pad ? vocabLen + pad - (vocabLen % pad) : vocabLen;

  // Permutations: output id -> the model's row, for ids it has below its vocab_size and its rows.
  const embedModels = new Map<string, EmbedModel>();
  for (const r of refs) {
    const vocab = own.get(r)!.vocab;
    const limit = Math.min(size(r), embedRows(views[r]) ?? Infinity);
    const perm = new Int32Array(vocabLen).fill(-1);
    tokens.forEach((tok, id) => {
      const row = tok === undefined ? undefined : vocab.get(tok);
      if (row !== undefined && row < limit) perm[id] = row;
    });
    embedModels.set(r, { ref: r, perm, vocab });
  }
  const settings = new Map<string, TokenSetting>(setting.tokens);
  const tokField = (tok: string) => ['tokenizer', 'tokens', tok];
  for (const [tok, s] of setting.tokens) {
    if (s.source && s.source.kind !== 'zero' && !refs.includes(s.source.ref)) {
      problems.push({ ...stage.doc.pos([...tokField(tok), 'source']), message: `${lp}model '${s.source.ref}' is not one of this stage's models (${refs.map((r) => `'${r}'`).join(', ')})` });
    }
  }

  // Token-indexed tensors: same width everywhere, then resized to the output vocabulary.
  for (const t of plan.tensors) {
    if (t.kind !== 'merge' || !isVocabTensor(t.name) || t.shape.length !== 2) continue;
    const srcs = [...(t.base ? [t.base] : []), ...t.models];
    const widths = new Set(srcs.map((s) => views[s.ref]?.info(s.tensor).shape[1]));
    if (widths.size > 1) {
      problems.push({ ...stage.doc.pos([]), message: `${lp}tensor ${t.name} has different widths across the models (${[...widths].join(', ')}); embeddings can only be permuted between models of one hidden size` });
      continue;
    }
    t.shape = [outRows, t.shape[1]];
  }
  if (plan.config) plan.config = { ...plan.config, vocab_size: outRows };

  const plans = new Map<string, EmbedPlan>();
  const embedPlan = (models: string[], base: string | null): EmbedPlan => {
    const order = base !== null ? [base, ...models.filter((m) => m !== base)] : models;
    const key = `${base ?? ''}\u0000${order.join('\u0000')}`;
    let p = plans.get(key);
    if (!p) {
      p = planEmbeddings({ tokens, outRows, models: order.map((r) => embedModels.get(r)!), base, settings }).plan;
      plans.set(key, p);
    }
    return p;
  };
  // The fallbacks of the stage's full model set: configured sources checked once, here.
  const full = planEmbeddings({ tokens, outRows, models: refs.map((r) => embedModels.get(r)!), base: stage.baseModel, settings });
  for (const p of full.problems) problems.push({ ...stage.doc.pos(['tokenizer', 'tokens']), message: `${lp}${p}` });
  if (full.unowned.length) {
    warnings.push(`${at([setting.field])}${full.unowned.length} token(s) of the output vocabulary are in no model (${full.unowned.slice(0, 4).map((t) => JSON.stringify(t)).join(', ')}${full.unowned.length > 4 ? ', ...' : ''}): their rows are zeros`);
  }
  if (problems.length) return fail();

  const files: Record<string, string> = { [TOKENIZER_JSON]: JSON.stringify(output.json, null, 2) + '\n' };
  files[TOKENIZER_CONFIG] = JSON.stringify(output.config ?? defaultConfig(output), null, 2) + '\n';
  if (output.specialTokensMap) files[SPECIAL_TOKENS_MAP] = JSON.stringify(output.specialTokensMap, null, 2) + '\n';
  return { tokenizer: { setting, output, vocabLen, outRows, embedPlan, files }, problems, warnings, output };
}

/** tokenizer_config.json for a source that had none: the added tokens and a fast tokenizer class. */
function defaultConfig(t: ModelTokenizer): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const a of t.added) decoder[String(a.id)] = { content: a.content, lstrip: a.lstrip, normalized: a.normalized, rstrip: a.rstrip, single_word: a.single_word, special: a.special };
  return { added_tokens_decoder: decoder, tokenizer_class: 'PreTrainedTokenizerFast' };
}

const REPLACED = new Set([TOKENIZER_JSON, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP, 'tokenizer.model', 'added_tokens.json', 'vocab.json', 'vocab.txt', 'merges.txt', 'spiece.model', 'sentencepiece.bpe.model']);

/**
 * Files of the donor folder a built tokenizer replaces, or would contradict: the same vocabulary in
 * other formats (a sentencepiece model, a GPT-2 vocab and merges, tiktoken ranks) would still hold
 * the donor's tokens. generation_config.json and chat templates are still copied.
 */
export function isReplacedTokenizerFile(name: string): boolean {
  return REPLACED.has(name) || name.endsWith('.tiktoken');
}
