import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { OutDType } from '../../src/checkpoint/dtype.js';
import { CheckpointWriter } from '../../src/checkpoint/writer.js';
import { mulberry32 } from '../../src/util/random.js';

/** Shapes of a 2-layer miniature Llama, the tensor names a real Llama/Mistral checkpoint has. */
export function tinyLlamaShapes(opts: { hidden?: number; inter?: number; vocab?: number; layers?: number; kv?: number } = {}): Array<[string, number[]]> {
  const h = opts.hidden ?? 8;
  const inter = opts.inter ?? 12;
  const vocab = opts.vocab ?? 16;
  const kv = opts.kv ?? 4;
  const layers = opts.layers ?? 2;
  const out: Array<[string, number[]]> = [['model.embed_tokens.weight', [vocab, h]]];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [`${p}self_attn.q_proj.weight`, [h, h]],
      [`${p}self_attn.k_proj.weight`, [kv, h]],
      [`${p}self_attn.v_proj.weight`, [kv, h]],
      [`${p}self_attn.o_proj.weight`, [h, h]],
      [`${p}mlp.gate_proj.weight`, [inter, h]],
      [`${p}mlp.up_proj.weight`, [inter, h]],
      [`${p}mlp.down_proj.weight`, [h, inter]],
      [`${p}input_layernorm.weight`, [h]],
      [`${p}post_attention_layernorm.weight`, [h]],
    );
  }
  out.push(['model.norm.weight', [h]], ['lm_head.weight', [vocab, h]]);
  return out;
}

/** Deterministic pseudo-random floats, so fixtures are the same on every run. */
export const prng = mulberry32;

export async function tmpDir(prefix = 'mergelab-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export interface FixtureOptions {
  seed: number;
  dtype?: OutDType;
  /** Values are base + delta: pass the base's seed and a delta scale to make a fine-tune. */
  baseSeed?: number;
  deltaScale?: number;
  shapes?: Array<[string, number[]]>;
  /** Override individual tensors (name -> data). */
  overrides?: Record<string, Float32Array>;
  shardSize?: number;
}

/** The float32 values a fixture holds before the writer rounds them to its dtype. */
export function fixtureValues(opts: FixtureOptions): Map<string, Float32Array> {
  const shapes = opts.shapes ?? tinyLlamaShapes();
  const out = new Map<string, Float32Array>();
  const baseRnd = prng(opts.baseSeed ?? opts.seed);
  const ownRnd = prng(opts.seed * 7919 + 1);
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const b = baseRnd() * 2 - 1;
      d[i] = opts.baseSeed === undefined ? b : b + (opts.deltaScale ?? 0.1) * (ownRnd() * 2 - 1);
    }
    out.set(name, opts.overrides?.[name] ?? d);
  }
  return out;
}

/** Write a tiny Llama-shaped Hugging Face folder; returns the exact float32 values written (F32 default). */
export async function writeTinyLlama(dir: string, opts: FixtureOptions): Promise<Map<string, Float32Array>> {
  const shapes = opts.shapes ?? tinyLlamaShapes();
  const values = fixtureValues(opts);
  const w = await CheckpointWriter.create(dir, { dtype: opts.dtype ?? 'F32', shardSize: opts.shardSize });
  for (const [name, shape] of shapes) await w.addF32(name, shape, values.get(name)!);
  const layers = new Set(shapes.map(([n]) => /layers\.(\d+)\./.exec(n)?.[1]).filter(Boolean)).size;
  await w.finish({
    config: { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: shapes[0][1][1], num_hidden_layers: layers, vocab_size: shapes[0][1][0] },
    extraFiles: { 'tokenizer.json': JSON.stringify({ model: { type: 'tiny' } }) },
  });
  return values;
}
