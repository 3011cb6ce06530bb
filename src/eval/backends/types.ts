/** What the evaluator needs from a model, whoever runs it (built-in zoo, a command, an HTTP server). */
export interface GenerateRequest { id: string; prompt: string; maxNewTokens: number; stop: readonly string[] }
export interface Generation {
  text: string;
  /** True when generation ended at the token limit, false at <eos>/stop, undefined if unknown. */
  hitLimit?: boolean;
}
export interface ScoreRequest { id: string; text: string }
export interface Score { nll: number; tokens: number }

export interface EvalBackend {
  /** Recorded with every result, e.g. `zoo/wasm`, `delegate:python run.py`, `http:http://...`. */
  readonly name: string;
  generate(reqs: readonly GenerateRequest[], opts: { batchSize: number }): Promise<Generation[]>;
  score(reqs: readonly ScoreRequest[], opts: { batchSize: number }): Promise<Score[]>;
  dispose(): Promise<void> | void;
}

/** Cuts an output at the first stop sequence (generation itself only stops at <eos> or the limit). */
export function cutAtStop(text: string, stop: readonly string[]): { text: string; stopped: boolean } {
  let cut = text.length;
  for (const s of stop) {
    const i = text.indexOf(s);
    if (i >= 0 && i < cut) cut = i;
  }
  return { text: text.slice(0, cut), stopped: cut < text.length };
}
