/**
 * Greedy generation and text scoring on a FastModel, for any set of independent rows. A row
 * carries the left padding the reference would have given it (plan.ts), nothing else ties it to
 * other rows, so rows can be split across threads, and batched with any others, in any way
 * without changing a bit.
 *
 * Rows are taken one at a time from a `Claim` (a counter, shared between threads when several
 * run one job) and decoded side by side: when a row ends, the next one is admitted in its place,
 * its prompt fed in the same call as the others' next tokens, so calls stay full until the rows
 * run out (continuous batching) and no thread waits for another's slowest row.
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

/** Hands out the index of the next row to run, each row once; undefined when none is left. */
export type Claim = () => number | undefined;

/** Row indices, costliest first (ties by index): claimed in this order, the last rows are short ones. */
export function claimOrder(costs: readonly number[]): Int32Array {
  return Int32Array.from(costs.map((_, i) => i).sort((a, b) => costs[b] - costs[a] || a - b));
}

/** A claim over `order` in this thread alone. */
export function sequentialClaim(order: ArrayLike<number>): Claim {
  let next = 0;
  return () => (next < order.length ? order[next++] : undefined);
}

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

/** Rows decoded side by side: enough to keep the kernels' 4-row tiles full and spread a call's fixed costs. */
export const MAX_ACTIVE = 48;
/** New prompts join a call while it has fewer tokens than this. */
export const MAX_TOKENS = 512;

interface Active { i: number; row: RowState; out: GenOut; text: string }

/**
 * Greedy continuation of the rows `claim` hands out; `onRow` hears each one's output as it ends.
 * `decode` turns one id into its text (for stop strings); `onTokens` hears how many tokens were
 * processed (prompt tokens included) as work proceeds.
 */
export function generateRows(...args: Parameters<typeof generateSteps>): void {
  runToEnd(generateSteps(...args));
}

/**
 * generateRows one model call at a time: the caller may let other work run between steps (the
 * calling thread of a pooled job hears that its thread budget changed). Releasing the job's
 * buffers needs the generator to finish or be returned.
 */
export function* generateSteps(
  model: FastModel,
  rows: readonly GenRow[],
  claim: Claim,
  decode: (id: number) => string,
  earlyStop: boolean,
  onRow: (i: number, out: GenOut) => void,
  onTokens?: (n: number) => void,
): Generator<void, void, void> {
  if (rows.length === 0) return;
  const { cap, longest } = jobSize(rows, (r) => model.capFor(r.pad, r.ids.length + r.maxNew));
  const V = model.cfg.vocabSize;
  const ld = model.ldV;
  const mark = model.mark();
  try {
    model.reserve(MAX_TOKENS + longest, cap);
    const free: RowState[] = [];
    let active: Active[] = [];
    let exhausted = false;
    for (;;) {
      const feeds: FeedRow[] = [];
      let tokens = 0;
      for (const a of active) {
        feeds.push({ row: a.row, ids: [a.out.ids[a.out.ids.length - 1]], tk: a.row.pad + a.row.len + 1, logits: 'last' });
        tokens++;
      }
      while (!exhausted && active.length < MAX_ACTIVE && tokens < MAX_TOKENS) {
        const i = claim();
        if (i === undefined) {
          exhausted = true;
          break;
        }
        const r = rows[i];
        if (r.maxNew <= 0) {
          onRow(i, { ids: [], stopped: false });
          continue;
        }
        const row = free.pop() ?? model.newRow(cap);
        model.reset(row, r.pad);
        active.push({ i, row, out: { ids: [], stopped: false }, text: '' });
        feeds.push({ row, ids: r.ids, tk: r.pad + r.ids.length, logits: 'last' });
        tokens += r.ids.length;
      }
      if (feeds.length === 0) return;
      const lg = model.feed(feeds);
      onTokens?.(tokens);
      const next: Active[] = [];
      active.forEach((a, j) => {
        const id = argmax(lg, j * ld, V);
        const r = rows[a.i];
        let done = id === EOS_ID;
        if (!done) {
          a.out.ids.push(id);
          done = a.out.ids.length >= r.maxNew;
        }
        if (!done && earlyStop && r.stop.length) {
          a.text += decode(id);
          if (stopSettled(a.text, r.stop)) done = a.out.stopped = true;
        }
        if (done) {
          onRow(a.i, a.out);
          free.push(a.row);
        } else next.push(a);
      });
      active = next;
      yield;
    }
  } finally {
    model.release(mark);
  }
}

/**
 * Logits [tokens - 1][vocab] of the positions that have a next token, for each row `claim` hands
 * out (to `onRow`). `tk` is the reference batch's query length (its longest text minus one).
 */
export function scoreRows(...args: Parameters<typeof scoreSteps>): void {
  runToEnd(scoreSteps(...args));
}

/** What a job's buffers must hold: its longest prompt, and the largest KV cache one of its rows needs. */
function jobSize<R extends { ids: ArrayLike<number> }>(rows: readonly R[], capOf: (r: R) => number): { cap: number; longest: number } {
  let cap = 0;
  let longest = 0;
  for (const r of rows) {
    cap = Math.max(cap, capOf(r));
    longest = Math.max(longest, r.ids.length);
  }
  return { cap, longest };
}

function runToEnd(steps: Generator<void, void, void>): void {
  while (!steps.next().done);
}

/** scoreRows one model call at a time (see generateSteps). */
export function* scoreSteps(model: FastModel, rows: readonly ScoreRow[], claim: Claim, onRow: (i: number, logits: Float32Array) => void, onTokens?: (n: number) => void): Generator<void, void, void> {
  if (rows.length === 0) return;
  const { cap, longest } = jobSize(rows, (r) => model.capFor(0, r.ids.length));
  const V = model.cfg.vocabSize;
  const ld = model.ldV;
  const mark = model.mark();
  try {
    model.reserve(MAX_TOKENS + longest, cap);
    let pending = claim();
    while (pending !== undefined) {
      const batch: number[] = [];
      const feeds: FeedRow[] = [];
      let tokens = 0;
      const inner = model.mark();
      try {
        while (pending !== undefined && tokens < MAX_TOKENS) {
          const r = rows[pending];
          if (r.ids.length < 2) onRow(pending, new Float32Array(0));
          else {
            batch.push(pending);
            feeds.push({ row: model.newRow(cap), ids: r.ids.slice(0, -1), tk: r.tk, logits: 'all' });
            tokens += r.ids.length - 1;
          }
          pending = claim();
        }
        if (feeds.length === 0) continue;
        const lg = model.feed(feeds);
        onTokens?.(tokens);
        let o = 0;
        batch.forEach((i, b) => {
          const n = feeds[b].ids.length;
          const out = new Float32Array(n * V);
          for (let t = 0; t < n; t++, o++) out.set(lg.subarray(o * ld, o * ld + V), t * V);
          onRow(i, out);
        });
      } finally {
        model.release(inner);
      }
      yield;
    }
  } finally {
    model.release(mark);
  }
}
