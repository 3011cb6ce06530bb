/** What the evaluator needs from a model, whoever runs it (built-in zoo, a command, an HTTP server). */
export interface ChatMessage { role: 'system' | 'user' | 'assistant'; content: string }
export interface GenerateRequest {
  id: string;
  prompt: string;
  maxNewTokens: number;
  stop: readonly string[];
  /**
   * The same request as chat turns, where the suite defines them (`chat:` in its yaml). A backend
   * that talks to a chat endpoint sends these and lets the server's chat template render them; the
   * others use `prompt`, which already carries the suite's own format.
   */
  messages?: readonly ChatMessage[];
}
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
  /** Token-level access, where the backend runs the model itself (the built-in runner). */
  readonly tokens?: TokenLevel;
}

/** Token-level access `mergelab serve` needs for sampling and logprobs, beyond the evaluator's calls. */
export interface TokenLevel {
  readonly vocabSize: number;
  /** Context window in tokens, <bos> included. */
  readonly contextLength: number;
  readonly bosId: number | null;
  readonly eosId: number;
  /** Token ids of a text, no <bos> added; throws UserError on text the vocabulary cannot spell. */
  encode(text: string): number[];
  /** The text of one token, as it appears in decoded output (specials as their strings). */
  tokenText(id: number): string;
  /**
   * Log-probabilities of each token of each sequence given the tokens before it (entry 0 is null:
   * nothing precedes it), and the `top` most likely tokens at each position.
   */
  sequenceLogprobs(seqs: readonly number[][], opts: { top: number; batchSize: number }): Promise<SequenceLogprobs[]>;
  /**
   * Extends each sequence one token at a time until `pick` returns eosId or `maxNewTokens` tokens
   * were added; `pick` gets the next token's log-probabilities (a fresh array it may keep).
   */
  decode(seqs: readonly number[][], opts: { maxNewTokens: number; batchSize: number; pick: (row: number, logprobs: Float32Array) => number }): Promise<number[][]>;
}
export interface SequenceLogprobs {
  logprobs: Array<number | null>;
  top: Array<Array<{ id: number; logprob: number }> | null>;
}

export function hasTokenLevel(b: EvalBackend): b is EvalBackend & { tokens: TokenLevel } {
  return (b as { tokens?: unknown }).tokens !== undefined;
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
