/**
 * Greedy generation and text scoring on a FastModel, for any set of independent rows. A row
 * carries the left padding the reference would have given it (plan.ts), nothing else ties it to
 * other rows, so rows can be split across threads in any way without changing a bit.
 */
import { EOS_ID } from '../../zoo/tokenizer.js';
import { argmax, type FastModel, type FeedRow, type RowState } from './model.js';

export interface GenRow {
  /** `<bos>` and the prompt's tokens. */
  ids: number[];
  /** Left padding of this row in the reference's batch. */
  pad: number;
  maxNew: number;
  /** Stop strings: generation may end once the first one found can no longer move. */
  stop: readonly string[];
}

export interface GenOut {
  /** Generated ids, without `<eos>`. */
  ids: number[];
  /** True when a stop string ended generation early (the text after it was never produced). */
  stopped: boolean;
}

export interface ScoreRow { ids: number[]; tk: number }

/**
 * True when the first stop string in `text` is settled: no stop string starting earlier can
 * still be completed by more text, so cutting at it gives what cutting the full generation would.
 */
export function stopSettled(text: string, stops: readonly string[]): boolean {
  let cut = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (cut < 0 || i < cut)) cut = i;
  }
  if (cut < 0) return false;
  for (const s of stops) {
    for (let j = Math.max(0, text.length - s.length + 1); j < cut; j++) if (s.startsWith(text.slice(j))) return false;
  }
  return true;
}

/** Rows decoded in lockstep per chunk (the rows of one matmul), enough to keep the kernels' 4-row tiles full. */
const CHUNK = 48;

/**
 * Greedy continuation of every row. `decode` turns one id into its text (for stop strings);
 * `onTokens` hears how many tokens were produced (prompt tokens included) as work proceeds.
 */
export function generateRows(model: FastModel, rows: readonly GenRow[], decode: (id: number) => string, earlyStop: boolean, onTokens?: (n: number) => void): GenOut[] {
  const out: GenOut[] = rows.map(() => ({ ids: [], stopped: false }));
  for (let c0 = 0; c0 < rows.length; c0 += CHUNK) {
    const idx = rows.map((_, i) => i).slice(c0, c0 + CHUNK);
    const mark = model.mark();
    try {
      const state = new Map<number, RowState>();
      for (const i of idx) state.set(i, model.newRow(rows[i].pad, rows[i].ids.length + rows[i].maxNew));
      const text = new Map<number, string>(idx.map((i) => [i, '']));
      let active = idx.filter((i) => rows[i].maxNew > 0);
      let feeds: FeedRow[] = active.map((i) => {
        const L = rows[i].pad + rows[i].ids.length;
        return { row: state.get(i)!, ids: rows[i].ids, tk: () => L, logits: 'last' };
      });
      while (active.length) {
        const logits = model.feed(feeds);
        onTokens?.(feeds.reduce((s, f) => s + f.ids.length, 0));
        const next: number[] = [];
        active.forEach((i, j) => {
          const id = argmax(logits[j]);
          const o = out[i];
          if (id === EOS_ID) return;
          o.ids.push(id);
          if (o.ids.length >= rows[i].maxNew) return;
          if (earlyStop && rows[i].stop.length) {
            const t = text.get(i)! + decode(id);
            text.set(i, t);
            if (stopSettled(t, rows[i].stop)) {
              o.stopped = true;
              return;
            }
          }
          next.push(i);
        });
        active = next;
        feeds = active.map((i) => {
          const row = state.get(i)!;
          return { row, ids: [out[i].ids[out[i].ids.length - 1]], tk: () => row.pad + row.len + 1, logits: 'last' };
        });
      }
    } finally {
      model.release(mark);
    }
  }
  return out;
}

/**
 * Logits [tokens - 1][vocab] of each row's positions that have a next token. `tk` is the
 * reference batch's query length (its longest text minus one).
 */
export function scoreRows(model: FastModel, rows: readonly ScoreRow[], onTokens?: (n: number) => void): Float32Array[] {
  const V = model.cfg.vocabSize;
  return rows.map((r) => {
    if (r.ids.length < 2) return new Float32Array(0);
    const mark = model.mark();
    try {
      const row = model.newRow(0, r.ids.length);
      const logits = model.feed([{ row, ids: r.ids.slice(0, -1), tk: () => r.tk, logits: 'all' }]);
      onTokens?.(r.ids.length - 1);
      const out = new Float32Array(logits.length * V);
      logits.forEach((lg, j) => out.set(lg, j * V));
      return out;
    } finally {
      model.release(mark);
    }
  });
}
