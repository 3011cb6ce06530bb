/**
 * Where the reference path (src/eval/backends/zoo.ts over src/zoo/generate.ts) puts each request:
 * which batch, and so how much left padding (generation) or which query length (scoring). The
 * reference's float32 sums run over padded positions, so the fast runner reproduces them to get
 * the same bits. Pure functions.
 */
import { BOS_ID } from '../../zoo/tokenizer.js';
import type { GenRow, ScoreRow } from './run.js';

export interface GenRequest { prompt: string; maxNewTokens: number; stop: readonly string[] }

/**
 * One row per request, in request order. The reference groups requests by token limit (first
 * seen first), sorts each group by prompt length in characters (stable), cuts it into batches of
 * `batchSize`, and left-pads each prompt to its batch's longest.
 */
export function planGeneration(reqs: readonly GenRequest[], encode: (text: string) => number[], batchSize: number): GenRow[] {
  const bs = Math.max(1, batchSize);
  const rows: GenRow[] = new Array(reqs.length);
  const groups = new Map<number, number[]>();
  reqs.forEach((r, i) => groups.set(r.maxNewTokens, [...(groups.get(r.maxNewTokens) ?? []), i]));
  for (const idx of groups.values()) {
    const order = [...idx].sort((a, b) => reqs[a].prompt.length - reqs[b].prompt.length);
    for (let s = 0; s < order.length; s += bs) {
      const batch = order.slice(s, s + bs);
      const enc = batch.map((i) => [BOS_ID, ...encode(reqs[i].prompt)]);
      const L = Math.max(...enc.map((e) => e.length));
      batch.forEach((i, j) => (rows[i] = { ids: enc[j], pad: L - enc[j].length, maxNew: reqs[i].maxNewTokens, stop: reqs[i].stop }));
    }
  }
  return rows;
}

/** One row per text: scored in consecutive batches of `batchSize`, each padded on the right to its longest. */
export function planScoring(texts: readonly string[], encode: (text: string) => number[], batchSize: number): ScoreRow[] {
  const bs = Math.max(1, batchSize);
  const rows: ScoreRow[] = [];
  for (let s = 0; s < texts.length; s += bs) {
    const enc = texts.slice(s, s + bs).map((t) => [BOS_ID, ...encode(t)]);
    const L = Math.max(...enc.map((e) => e.length));
    for (const e of enc) rows.push({ ids: e, tk: L - 1 });
  }
  return rows;
}
