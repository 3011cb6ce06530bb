/** Measures one training step (forward + backward) of zoo model sizes on the current backend. */
import { tf, initBackend, initWeights, lossFn, trainingView, causalMask, ropeTensors, parameterCount, type ZooConfig } from '../src/zoo/model.js';

const [d, L, B, T, I] = (process.argv[2] ?? '128,4,8,256,384').split(',').map(Number);
const cfg: ZooConfig = { vocabSize: 101, hiddenSize: d, intermediateSize: I, numLayers: L, numHeads: d / 32, numKvHeads: Math.max(1, d / 64), rmsNormEps: 1e-5, ropeTheta: 10000, maxPositions: 512 };
const backend = await initBackend();
const init = initWeights(cfg, 1);
const vars = new Map<string, tf.Variable>();
for (const [n, { shape, data }] of init) vars.set(n, tf.variable(tf.tensor(data, shape)));
const rope = ropeTensors(cfg, T);
const mask = causalMask(T);
const ids = tf.tensor2d(Array.from({ length: B * T }, (_, i) => (i * 7) % 101), [B, T], 'int32');
const lm = tf.ones([B * T]);
const view = trainingView(vars as Map<string, tf.Tensor>);
const times: number[] = [];
for (let s = 0; s < 6; s++) {
  const t0 = performance.now();
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => lossFn(cfg, view, ids, ids, lm, rope, mask), [...vars.values()]);
    value.dataSync();
    for (const g of Object.values(grads)) g.dispose();
  });
  times.push(performance.now() - t0);
}
console.log(JSON.stringify({ backend, cfg: { d, L, B, T, I }, params: parameterCount(cfg), msPerStep: times.map(Math.round), tokPerS: Math.round((B * T) / (times.slice(2).reduce((a, b) => a + b) / 4 / 1000)), tensors: tf.memory().numTensors }));
