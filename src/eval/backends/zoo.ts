/** Built-in backend: zoo models evaluated in-process with ZOO's batched KV-cache decoding. */
import { loadZooModel, type ZooModel } from '../../zoo/io.js';
import { generateGreedy, scoreText } from '../../zoo/generate.js';
import { initBackend, tf } from '../../zoo/model.js';
import type { EvalBackend, GenerateRequest, Generation, Score, ScoreRequest } from './types.js';
import { installFastTile } from './fast-tile.js';
import { zooTokenLevel } from './zoo-tokens.js';
import type { TokenLevel } from './types.js';

export class ZooBackend implements EvalBackend {
  readonly tokens: TokenLevel;
  private constructor(
    private readonly model: ZooModel,
    readonly name: string,
    /** Tokens processed (prompts with <bos>, generated, scored), once per call. */
    private readonly onTokens?: (n: number) => void,
  ) {
    this.tokens = zooTokenLevel(model);
  }

  static async open(modelDir: string, onTokens?: (n: number) => void): Promise<ZooBackend> {
    const tfBackend = await initBackend();
    installFastTile();
    return new ZooBackend(await loadZooModel(modelDir), `zoo/tfjs-${tfBackend}`, onTokens);
  }

  /** Wraps an already loaded model (tests, sweeps that keep models in memory). */
  static fromModel(model: ZooModel): ZooBackend {
    installFastTile();
    return new ZooBackend(model, `zoo/tfjs-${tf.getBackend()}`);
  }

  async generate(reqs: readonly GenerateRequest[], opts: { batchSize: number }): Promise<Generation[]> {
    const out: Generation[] = new Array(reqs.length);
    // generateGreedy takes one limit per call; group requests that share it (one group per task).
    const groups = new Map<number, number[]>();
    reqs.forEach((r, i) => groups.set(r.maxNewTokens, [...(groups.get(r.maxNewTokens) ?? []), i]));
    for (const [limit, idx] of groups) {
      const texts = await generateGreedy(this.model, idx.map((i) => reqs[i].prompt), { maxNewTokens: limit, batchSize: opts.batchSize });
      idx.forEach((i, j) => {
        // Char-level vocabulary: the continuation's token count is its encoded length; <eos> is not in it.
        const n = this.model.tokenizer.encode(texts[j]).length;
        out[i] = { text: texts[j], hitLimit: n >= limit };
        this.onTokens?.(1 + this.model.tokenizer.encode(reqs[i].prompt).length + n);
      });
    }
    return out;
  }

  async score(reqs: readonly ScoreRequest[], opts: { batchSize: number }): Promise<Score[]> {
    const scores = await scoreText(this.model, reqs.map((r) => r.text), { batchSize: opts.batchSize });
    this.onTokens?.(scores.reduce((s, x) => s + x.tokens, 0));
    return scores;
  }

  dispose(): void {
    this.model.dispose();
  }
}
