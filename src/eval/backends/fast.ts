/**
 * Built-in backend on the fast runner (src/eval/runner-typed/): zoo models evaluated with wasm
 * SIMD kernels over worker threads. Greedy outputs and log-likelihoods are those of the tfjs
 * reference (backends/zoo.ts) for the same batch size, which it reproduces (runner-typed/plan.ts).
 */
import path from 'node:path';
import { readZooArrays, readZooTokenizer } from '../../zoo/io.js';
import type { ZooTokenizer } from '../../zoo/tokenizer.js';
import { UserError } from '../../util/errors.js';
import { FastRunner, type FastRunnerOptions } from '../runner-typed/runner.js';
import { fastRunnerUnsupported } from '../runner-typed/model.js';
import { planGeneration, planScoring } from '../runner-typed/plan.js';
import type { EvalBackend, GenerateRequest, Generation, Score, ScoreRequest } from './types.js';

export const FAST_BACKEND_NAME = 'zoo/fast-wasm';

/** A model whose shapes the fast kernels do not take (the reference runner takes every zoo model). */
export class FastRunnerUnsupported extends UserError {}

export class FastZooBackend implements EvalBackend {
  readonly name = FAST_BACKEND_NAME;
  private constructor(
    private readonly runner: FastRunner,
    private readonly tokenizer: ZooTokenizer,
  ) {}

  static async open(modelDir: string, opts: FastRunnerOptions = {}): Promise<FastZooBackend> {
    const { config, arrays } = await readZooArrays(modelDir);
    const why = fastRunnerUnsupported(config);
    if (why) throw new FastRunnerUnsupported(`${path.join(modelDir, 'config.json')}: the fast runner cannot run this model (${why}); use --runner tfjs`, { file: modelDir, field: 'runner' });
    const tokenizer = await readZooTokenizer(modelDir, config);
    return new FastZooBackend(new FastRunner(config, arrays, tokenizer, opts), tokenizer);
  }

  /** Tokens processed so far are reported here (the sweep's tokens/s). */
  set onTokens(f: ((n: number) => void) | undefined) {
    this.runner.onTokens = f;
  }

  async generate(reqs: readonly GenerateRequest[], opts: { batchSize: number }): Promise<Generation[]> {
    const rows = planGeneration(reqs.map((r) => ({ prompt: r.prompt, maxNewTokens: r.maxNewTokens, stop: r.stop })), (t) => this.tokenizer.encode(t), opts.batchSize);
    const outs = await this.runner.generate(rows);
    return outs.map((o, i) => {
      const text = this.tokenizer.decode(o.ids);
      // As the reference counts it (char-level vocabulary: the re-encoded length); a row ended by a stop string did not hit the limit.
      return { text, hitLimit: o.stopped ? false : this.tokenizer.encode(text).length >= reqs[i].maxNewTokens };
    });
  }

  /**
   * The log-softmax is tfjs's own op on the fast runner's logits (the reference's bits exactly):
   * tfjs-wasm takes exp and log from the C library, whose float rounding a JS Math.exp would
   * not always repeat. It is a row-wise op, so all positions of all texts go in one call.
   */
  async score(reqs: readonly ScoreRequest[], opts: { batchSize: number }): Promise<Score[]> {
    const rows = planScoring(reqs.map((r) => r.text), (t) => this.tokenizer.encode(t), opts.batchSize);
    const logits = await this.runner.score(rows);
    const { initBackend, tf } = await import('../../zoo/model.js');
    await initBackend();
    const V = this.tokenizer.vocabSize;
    const total = logits.reduce((s, l) => s + l.length, 0);
    const all = new Float32Array(total);
    let at = 0;
    for (const l of logits) (all.set(l, at), (at += l.length));
    // Not inside tf.tidy: tidy would walk the returned array element by element looking for tensors.
    const input = tf.tensor2d(all, [total / V, V]);
    const out = tf.logSoftmax(input);
    const logp = out.dataSync() as Float32Array;
    input.dispose();
    out.dispose();
    at = 0;
    return rows.map((r) => {
      const n = r.ids.length - 1;
      if (n < 1) return { nll: 0, tokens: 0 };
      // The reference sums the picked log-probabilities in float32, position by position.
      let s = 0;
      for (let j = 0; j < n; j++) s = Math.fround(s + logp[(at + j) * V + r.ids[j + 1]]);
      at += n;
      return { nll: -s, tokens: n };
    });
  }

  async dispose(): Promise<void> {
    await this.runner.dispose();
  }
}
