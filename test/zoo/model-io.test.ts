import { describe, expect, it, beforeAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend, initWeights, inferenceView, forward, ropeTensors, causalMask, tf, type ZooConfig, type Weights } from '../../src/zoo/model.js';
import { saveZooModel, loadZooModel, toHfConfig } from '../../src/zoo/io.js';
import { ZooTokenizer } from '../../src/zoo/tokenizer.js';
import { CheckpointWriter } from '../../src/checkpoint/writer.js';
import { UserError } from '../../src/util/errors.js';

const cfg: ZooConfig = { vocabSize: new ZooTokenizer().vocabSize, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositions: 64 };

function weights(seed: number): Weights {
  return new Map([...initWeights(cfg, seed)].map(([n, { shape, data }]) => [n, tf.tensor(data, shape)]));
}

function logits(w: Weights, ids: number[]): Float32Array {
  const view = inferenceView(w);
  const out = tf.tidy(() => {
    const T = ids.length;
    const r = ropeTensors(cfg, T);
    return forward(cfg, view, { ids: tf.tensor2d([ids], [1, T], 'int32'), cos: r.cos, sin: r.sin, mask: causalMask(T) }).logits.dataSync() as Float32Array;
  });
  view.dispose();
  return out;
}

async function tmp(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'zoo-io-'));
}

describe('zoo model save/load', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('writes HF names, Llama config fields, and reloads to identical logits', async () => {
    const dir = path.join(await tmp(), 'm');
    const w = weights(3);
    await saveZooModel(dir, cfg, w);
    const files = await fs.readdir(dir);
    expect(files).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']));
    const conf = JSON.parse(await fs.readFile(path.join(dir, 'config.json'), 'utf8'));
    expect(conf).toMatchObject({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 16, num_key_value_heads: 2, tie_word_embeddings: false, torch_dtype: 'float32' });
    const m = await loadZooModel(dir);
    expect([...m.weights.keys()]).toContain('model.layers.1.self_attn.k_proj.weight');
    expect(m.weights.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([8, 16]);
    const ids = [1, 20, 30, 40, 50, 5, 7];
    expect(Array.from(logits(m.weights, ids))).toEqual(Array.from(logits(w, ids)));
    m.dispose();
  });

  it('saves and reloads a word-level tokenizer with the model, and refuses a tokenizer of another size', async () => {
    const words = new ZooTokenizer(['cat', 'dog']);
    const wcfg: ZooConfig = { ...cfg, vocabSize: words.vocabSize };
    const w = new Map([...initWeights(wcfg, 2)].map(([n, { shape, data }]) => [n, tf.tensor(data, shape)]));
    const dir = path.join(await tmp(), 'words');
    await saveZooModel(dir, wcfg, w, {}, words);
    const m = await loadZooModel(dir);
    expect(m.tokenizer.words).toEqual(['cat', 'dog']);
    expect(m.tokenizer.encode('dog')).toEqual([words.vocabSize - 1]);
    m.dispose();
    await expect(saveZooModel(path.join(await tmp(), 'x'), wcfg, w)).rejects.toThrow(/vocab_size 103 does not match the tokenizer's 101/);
    for (const t of w.values()) t.dispose();
  });

  async function writeBroken(edit: (names: Map<string, { shape: number[]; data: Float32Array }>, conf: Record<string, unknown>) => void): Promise<string> {
    const dir = path.join(await tmp(), 'broken');
    const init = initWeights(cfg, 1);
    const conf = toHfConfig(cfg);
    edit(init, conf);
    const w = await CheckpointWriter.create(dir, { dtype: 'F32' });
    for (const [n, { shape, data }] of init) await w.addF32(n, shape, data);
    await w.finish({ config: conf, extraFiles: { 'tokenizer.json': JSON.stringify(new ZooTokenizer().toJSON()) } });
    return dir;
  }

  it('names a missing tensor', async () => {
    const dir = await writeBroken((m) => m.delete('model.layers.1.mlp.up_proj.weight'));
    await expect(loadZooModel(dir)).rejects.toThrow(/tensor model\.layers\.1\.mlp\.up_proj\.weight is missing/);
    await expect(loadZooModel(dir)).rejects.toBeInstanceOf(UserError);
  });

  it('names a tensor with the wrong shape', async () => {
    const dir = await writeBroken((m) => m.set('lm_head.weight', { shape: [cfg.vocabSize, 8], data: new Float32Array(cfg.vocabSize * 8) }));
    await expect(loadZooModel(dir)).rejects.toThrow(/tensor lm_head\.weight has shape \[101, 8\]; expected \[101, 16\]/);
  });

  it('names an unknown architecture', async () => {
    const dir = await writeBroken((_, c) => {
      c.architectures = ['GPT2LMHeadModel'];
      c.model_type = 'gpt2';
    });
    await expect(loadZooModel(dir)).rejects.toThrow(/unknown architecture.*GPT2LMHeadModel/);
  });

  it('names a bad config field', async () => {
    const dir = await writeBroken((_, c) => {
      c.num_key_value_heads = 3;
    });
    await expect(loadZooModel(dir)).rejects.toThrow(/num_key_value_heads/);
  });
});
