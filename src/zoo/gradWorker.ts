/** Child process entry: computes micro-batch gradients for a trainer in another process (gradHelper.ts). */
import { initBackend, tf, type ZooConfig } from './model.js';
import { microGrads, type MicroBatch, type RopeCache } from './microGrads.js';
import type { HelperReply, HelperRequest } from './gradHelper.js';

let cfg: ZooConfig;
let names: string[] = [];
let vars: tf.Variable[] = [];
const cache: RopeCache = new Map();
const reply = (r: HelperReply) => process.send!(r);

process.on('message', (msg: HelperRequest) => {
  void (async () => {
    try {
      if (msg.kind === 'init') {
        cfg = msg.cfg;
        names = msg.names;
        const backend = await initBackend();
        vars = msg.shapes.map((shape) => tf.variable(tf.zeros(shape), true));
        reply({ kind: 'ready', backend });
      } else {
        tf.tidy(() => vars.forEach((v, i) => v.assign(tf.tensor(msg.weights[i], v.shape))));
        const g = microGrads(cfg, names, vars, msg.mb as MicroBatch, cache);
        reply({ kind: 'grads', ...g });
      }
    } catch (e) {
      reply({ kind: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
