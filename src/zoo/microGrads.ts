/**
 * One training step's gradient computed over row groups (micro-batches) and averaged by their
 * loss tokens, so that the groups can run on separate cores. The split belongs to the plan
 * (PhasePlan.microBatches): a group's gradient is the same whichever process computes it, so the
 * weights do not depend on how many helpers ran.
 */
import { lossFn, trainingView, causalMask, ropeTensors, tf, type Weights, type ZooConfig } from './model.js';

export interface MicroBatch {
  ids: Int32Array;
  targets: Int32Array;
  lossMask: Float32Array;
  B: number;
  T: number;
}

export interface MicroGrads {
  /** Mean loss over the group's loss tokens. */
  loss: number;
  /** Loss tokens in the group: its weight in the average. */
  tokens: number;
  grads: Float32Array[];
}

export type RopeCache = Map<number, { cos: tf.Tensor; sin: tf.Tensor; mask: tf.Tensor }>;

export function ropeFor(cfg: ZooConfig, cache: RopeCache, T: number): { cos: tf.Tensor; sin: tf.Tensor; mask: tf.Tensor } {
  let rm = cache.get(T);
  if (!rm) {
    rm = { ...ropeTensors(cfg, T), mask: causalMask(T) };
    cache.set(T, rm);
  }
  return rm;
}

export function disposeRopeCache(cache: RopeCache): void {
  for (const v of cache.values()) (v.cos.dispose(), v.sin.dispose(), v.mask.dispose());
  cache.clear();
}

/** Rows split into `parts` consecutive groups, the first ones a row larger when B does not divide. */
export function splitBatch(batch: MicroBatch, parts: number): MicroBatch[] {
  if (!Number.isInteger(parts) || parts < 1 || parts > batch.B) throw new Error(`cannot split a batch of ${batch.B} rows into ${parts} micro-batches`);
  const out: MicroBatch[] = [];
  let row = 0;
  for (let i = 0; i < parts; i++) {
    const rows = Math.floor(batch.B / parts) + (i < batch.B % parts ? 1 : 0);
    const [a, b] = [row * batch.T, (row + rows) * batch.T];
    out.push({ ids: batch.ids.slice(a, b), targets: batch.targets.slice(a, b), lossMask: batch.lossMask.slice(a, b), B: rows, T: batch.T });
    row += rows;
  }
  return out;
}

/** Mean-loss gradient of one group with respect to `vars` (in that order). */
export function microGrads(cfg: ZooConfig, names: string[], vars: tf.Variable[], mb: MicroBatch, cache: RopeCache): MicroGrads {
  const rm = ropeFor(cfg, cache, mb.T);
  let loss = NaN;
  let grads: Float32Array[] = [];
  // Results leave the tidy through the closure: tidy would walk returned typed arrays element by element.
  tf.tidy(() => {
    const ids = tf.tensor2d(mb.ids, [mb.B, mb.T], 'int32');
    const targets = tf.tensor2d(mb.targets, [mb.B, mb.T], 'int32');
    const mask = tf.tensor1d(mb.lossMask);
    const params = new Map(names.map((n, i) => [n, vars[i]]));
    const view = trainingView(params as unknown as Weights);
    const { value, grads: g } = tf.variableGrads(() => lossFn(cfg, view, ids, targets, mask, rm, rm.mask), vars);
    grads = vars.map((v) => (g[v.name].dataSync() as Float32Array).slice());
    loss = value.dataSync()[0];
  });
  let tokens = 0;
  for (const m of mb.lossMask) tokens += m;
  return { loss, tokens, grads };
}

/** The whole batch's mean-loss gradient from its groups': weighted by loss tokens, summed in group order. */
export function combineGrads(parts: MicroGrads[]): { loss: number; grads: Float32Array[] } {
  const total = Math.max(1, parts.reduce((a, p) => a + p.tokens, 0));
  const w = parts.map((p) => p.tokens / total);
  const grads = parts[0].grads.map((g0, i) => {
    const out = new Float32Array(g0.length);
    for (let j = 0; j < out.length; j++) {
      let acc = 0;
      for (let k = 0; k < parts.length; k++) acc += w[k] * parts[k].grads[i][j];
      out[j] = acc;
    }
    return out;
  });
  return { loss: parts.reduce((a, p, k) => a + w[k] * (p.tokens > 0 ? p.loss : 0), 0), grads };
}
