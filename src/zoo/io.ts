/**
 * Zoo models as Hugging Face folders: Llama config.json, F32 safetensors (through src/checkpoint)
 * and the zoo tokenizer (characters, optionally whole words). Loading validates everything a
 * merged folder could get wrong and names the tensor or field.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openCheckpoint } from '../checkpoint/reader.js';
import { CheckpointWriter } from '../checkpoint/writer.js';
import { UserError } from '../util/errors.js';
import { ZooTokenizer, BOS_ID, EOS_ID, PAD_ID } from './tokenizer.js';
import { initBackend, tensorShapes, tf, type Weights, type ZooConfig } from './model.js';

export interface ZooModel {
  dir: string;
  config: ZooConfig;
  /** The config.json as read (Llama field names). */
  hfConfig: Record<string, unknown>;
  tokenizer: ZooTokenizer;
  weights: Weights;
  dispose(): void;
}

export function toHfConfig(cfg: ZooConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.hiddenSize / cfg.numHeads,
    hidden_act: 'silu',
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    max_position_embeddings: cfg.maxPositions,
    vocab_size: cfg.vocabSize,
    bos_token_id: BOS_ID,
    eos_token_id: EOS_ID,
    pad_token_id: PAD_ID,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
  };
}

export function fromHfConfig(c: Record<string, unknown> | null, file: string): ZooConfig {
  if (!c) throw new UserError(`${file}: config.json is missing; expected a Llama config`, { file });
  const arch = c.architectures;
  if (c.model_type !== 'llama' || !Array.isArray(arch) || !arch.includes('LlamaForCausalLM')) {
    throw new UserError(`${file}: unknown architecture (model_type ${JSON.stringify(c.model_type)}, architectures ${JSON.stringify(arch)}); expected model_type "llama" with architectures ["LlamaForCausalLM"]`, { file, field: 'architectures' });
  }
  const int = (k: string): number => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new UserError(`${file}: field ${k} is ${JSON.stringify(v)}; expected a positive integer`, { file, field: k });
    return v;
  };
  const num = (k: string): number => {
    const v = c[k];
    if (typeof v !== 'number' || !(v > 0)) throw new UserError(`${file}: field ${k} is ${JSON.stringify(v)}; expected a positive number`, { file, field: k });
    return v;
  };
  const cfg: ZooConfig = {
    vocabSize: int('vocab_size'),
    hiddenSize: int('hidden_size'),
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads: int('num_attention_heads'),
    numKvHeads: c.num_key_value_heads === undefined ? int('num_attention_heads') : int('num_key_value_heads'),
    rmsNormEps: num('rms_norm_eps'),
    ropeTheta: c.rope_theta === undefined ? 10000 : num('rope_theta'),
    maxPositions: int('max_position_embeddings'),
  };
  if (cfg.hiddenSize % cfg.numHeads !== 0 || (cfg.hiddenSize / cfg.numHeads) % 2 !== 0) {
    throw new UserError(`${file}: hidden_size ${cfg.hiddenSize} must split into num_attention_heads ${cfg.numHeads} heads of an even size`, { file, field: 'num_attention_heads' });
  }
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== cfg.hiddenSize / cfg.numHeads) {
    throw new UserError(`${file}: field head_dim is ${JSON.stringify(c.head_dim)}; expected hidden_size / num_attention_heads = ${cfg.hiddenSize / cfg.numHeads}`, { file, field: 'head_dim' });
  }
  if (cfg.numHeads % cfg.numKvHeads !== 0) {
    throw new UserError(`${file}: num_attention_heads ${cfg.numHeads} is not a multiple of num_key_value_heads ${cfg.numKvHeads}`, { file, field: 'num_key_value_heads' });
  }
  if (c.tie_word_embeddings === true) throw new UserError(`${file}: tie_word_embeddings is true; zoo models have an untied lm_head`, { file, field: 'tie_word_embeddings' });
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) throw new UserError(`${file}: rope_scaling ${JSON.stringify(c.rope_scaling)} is not supported; expected null`, { file, field: 'rope_scaling' });
  return cfg;
}

/** Anything holding float weights by HF name: tfjs tensors or plain arrays. */
export type WeightSource = Map<string, tf.Tensor | Float32Array>;

/** A model and tokenizer built in code must agree; a mismatch is a programming error, not a user's. */
function sameVocab(where: string, cfg: ZooConfig, tok: ZooTokenizer): void {
  if (tok.vocabSize !== cfg.vocabSize) throw new Error(`${where}: vocab_size ${cfg.vocabSize} does not match the tokenizer's ${tok.vocabSize}`);
}

/** Writes a HF folder atomically (the writer builds a hidden sibling and renames it). */
export async function saveZooModel(dir: string, cfg: ZooConfig, weights: WeightSource, extraFiles: Record<string, string> = {}, tok = new ZooTokenizer()): Promise<void> {
  sameVocab('saveZooModel', cfg, tok);
  const w = await CheckpointWriter.create(dir, { dtype: 'F32' });
  try {
    for (const [name, shape] of tensorShapes(cfg)) {
      const t = weights.get(name);
      if (!t) throw new Error(`saveZooModel: weight ${name} is missing`);
      const data = t instanceof Float32Array ? t : ((await t.data()) as Float32Array);
      await w.addF32(name, shape, data);
    }
  } catch (e) {
    await w.abort();
    throw e;
  }
  await w.finish({
    config: toHfConfig(cfg),
    extraFiles: {
      'tokenizer.json': JSON.stringify(tok.toJSON(), null, 2) + '\n',
      'tokenizer_config.json': JSON.stringify(tok.configJSON(), null, 2) + '\n',
      'special_tokens_map.json': JSON.stringify({ bos_token: '<bos>', eos_token: '<eos>', pad_token: '<pad>', unk_token: '<pad>', additional_special_tokens: ['<|user|>', '<|assistant|>'] }, null, 2) + '\n',
      'generation_config.json': JSON.stringify({ bos_token_id: BOS_ID, eos_token_id: EOS_ID, pad_token_id: PAD_ID, do_sample: false }, null, 2) + '\n',
      ...extraFiles,
    },
  });
}

/** Reads the raw arrays of a zoo folder after validating config, names and shapes. */
export async function readZooArrays(dir: string): Promise<{ config: ZooConfig; hfConfig: Record<string, unknown>; arrays: Map<string, Float32Array> }> {
  const ck = await openCheckpoint(dir);
  try {
    const cfgFile = path.join(dir, 'config.json');
    const config = fromHfConfig(ck.config, cfgFile);
    const arrays = new Map<string, Float32Array>();
    for (const [name, shape] of tensorShapes(config)) {
      if (!ck.has(name)) throw new UserError(`${dir}: tensor ${name} is missing; a Llama model with ${config.numLayers} layers needs it`, { file: dir, field: name });
      const info = ck.info(name);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new UserError(`${dir}: tensor ${name} has shape [${info.shape.join(', ')}]; expected [${shape.join(', ')}] from config.json`, { file: dir, field: name });
      }
      arrays.set(name, await ck.readF32(name));
    }
    return { config, hfConfig: ck.config as Record<string, unknown>, arrays };
  } finally {
    await ck.close();
  }
}

/** The tokenizer of a zoo folder, checked against its config's vocabulary size. */
export async function readZooTokenizer(dir: string, config: ZooConfig): Promise<ZooTokenizer> {
  const tokFile = path.join(dir, 'tokenizer.json');
  let tokJson: unknown;
  try {
    tokJson = JSON.parse(await fs.readFile(tokFile, 'utf8'));
  } catch (e) {
    throw new UserError(`${tokFile}: cannot read the tokenizer (${(e as Error).message}); expected the zoo's tokenizer.json`, { file: tokFile });
  }
  const tokenizer = ZooTokenizer.fromJSON(tokJson, tokFile);
  if (config.vocabSize !== tokenizer.vocabSize) {
    throw new UserError(`${path.join(dir, 'config.json')}: vocab_size ${config.vocabSize} does not match the tokenizer's ${tokenizer.vocabSize}`, { field: 'vocab_size' });
  }
  return tokenizer;
}

export async function loadZooModel(dir: string): Promise<ZooModel> {
  await initBackend();
  const { config, hfConfig, arrays } = await readZooArrays(dir);
  const tokenizer = await readZooTokenizer(dir, config);
  const weights: Weights = new Map();
  for (const [name, data] of arrays) weights.set(name, tf.tensor(data, tensorShapes(config).find(([n]) => n === name)![1]));
  return {
    dir,
    config,
    hfConfig,
    tokenizer,
    weights,
    dispose: () => {
      for (const t of weights.values()) t.dispose();
      weights.clear();
    },
  };
}

/** Wraps in-memory weights (e.g. during training) as a ZooModel without touching disk. */
export function zooModelFromWeights(config: ZooConfig, weights: Weights, dir = '<memory>', tokenizer = new ZooTokenizer()): ZooModel {
  sameVocab('zooModelFromWeights', config, tokenizer);
  return { dir, config, hfConfig: toHfConfig(config), tokenizer, weights, dispose: () => {} };
}
