/**
 * Choosing the next token from log-probabilities as OpenAI-compatible servers do: temperature 0
 * is greedy; otherwise the distribution is sharpened by temperature, cut to the `topK` most likely
 * tokens and to the smallest set whose probability reaches `topP`, and drawn from. Pure: the
 * random source is passed in.
 */
export interface SamplingParams {
  temperature: number;
  topP: number;
  /** -1 or 0: no cut. */
  topK: number;
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

export function chooseToken(logprobs: ArrayLike<number>, p: SamplingParams, rand: () => number): number {
  if (p.temperature === 0) return argmax(logprobs);
  const n = logprobs.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logprobs[b] - logprobs[a] || a - b);
  const keepK = p.topK > 0 ? Math.min(p.topK, n) : n;
  const top = logprobs[order[0]] / p.temperature;
  const w = new Float64Array(keepK);
  let sum = 0;
  for (let i = 0; i < keepK; i++) {
    w[i] = Math.exp(logprobs[order[i]] / p.temperature - top);
    sum += w[i];
  }
  // Nucleus: the smallest prefix (most likely first) whose mass reaches topP.
  let keep = keepK;
  if (p.topP < 1) {
    let acc = 0;
    for (let i = 0; i < keepK; i++) {
      acc += w[i] / sum;
      if (acc >= p.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let mass = 0;
  for (let i = 0; i < keep; i++) mass += w[i];
  let u = rand() * mass;
  for (let i = 0; i < keep; i++) {
    u -= w[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

/** A 32-bit seed for choice `index` of a request seeded with `seed` (so choices do not share draws). */
export function choiceSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
