import { describe, expect, it, beforeAll } from 'vitest';
import { initBackend, initWeights, inferenceView, forward, ropeTensors, causalMask, tf, type ZooConfig, type Weights } from '../../src/zoo/model.js';
import { zooModelFromWeights, type ZooModel } from '../../src/zoo/io.js';
import { generateGreedy, scoreText } from '../../src/zoo/generate.js';
import { ZooTokenizer, BOS_ID } from '../../src/zoo/tokenizer.js';

const cfg: ZooConfig = { vocabSize: new ZooTokenizer().vocabSize, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositions: 128 };
let model: ZooModel;

describe('zoo generation', () => {
  beforeAll(async () => {
    await initBackend();
    const w: Weights = new Map([...initWeights(cfg, 7)].map(([n, { shape, data }]) => [n, tf.tensor(data, shape)]));
    model = zooModelFromWeights(cfg, w);
  });

  const prompts = ['Question: 3 + 4', 'a', '<|user|>Say cat.\n<|assistant|>', 'The word dog backwards is'];

  it('gives the same tokens with the KV cache as with full recomputation', async () => {
    const cached = await generateGreedy(model, prompts, { maxNewTokens: 12, batchSize: 4 });
    const recomputed = await generateGreedy(model, prompts, { maxNewTokens: 12, batchSize: 4, useCache: false });
    expect(cached).toEqual(recomputed);
    expect(cached.some((s) => s.length > 0)).toBe(true);
  });

  it('does not depend on the other prompts in the batch (padding is masked)', async () => {
    const batched = await generateGreedy(model, prompts, { maxNewTokens: 10, batchSize: 4 });
    const single = [];
    for (const p of prompts) single.push(...(await generateGreedy(model, [p], { maxNewTokens: 10 })));
    expect(batched).toEqual(single);
  });

  it('scores a text as the sum of its tokens\' negative log-likelihoods after <bos>', async () => {
    const text = 'cat sat';
    const [batched, alone] = [await scoreText(model, [text, 'a much longer text here'], { batchSize: 2 }), await scoreText(model, [text])];
    expect(batched[0].tokens).toBe(7);
    expect(batched[0].nll).toBeCloseTo(alone[0].nll, 3);
    // Reference: one forward pass, log-softmax picked by hand.
    const ids = [BOS_ID, ...model.tokenizer.encode(text)];
    const view = inferenceView(model.weights);
    const lp = tf.tidy(() => {
      const T = ids.length;
      const r = ropeTensors(cfg, T);
      return tf.logSoftmax(forward(cfg, view, { ids: tf.tensor2d([ids], [1, T], 'int32'), cos: r.cos, sin: r.sin, mask: causalMask(T) }).logits).arraySync() as number[][];
    });
    view.dispose();
    let ref = 0;
    for (let j = 0; j + 1 < ids.length; j++) ref -= lp[j][ids[j + 1]];
    expect(alone[0].nll).toBeCloseTo(ref, 3);
  });
});
