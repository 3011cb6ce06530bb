import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResultRecord } from '../../src/results/record.js';
import type { MetricSpec } from '../../src/results/metric.js';
import { suiteMetricSpecs } from '../../src/eval/declare.js';
import { parseTaskSpec } from '../../src/eval/task.js';

const EVALS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../evals');

/** The built-in suites' declarations, read from their YAML as the evaluator does. */
export const BUILTIN_SPECS: Record<string, Record<string, MetricSpec>> = Object.fromEntries(
  ['math', 'chat', 'lm'].map((suite) => {
    const file = path.join(EVALS, `${suite}.yaml`);
    return [suite, suiteMetricSpecs(parseTaskSpec(readFileSync(file, 'utf8'), file))];
  }),
);

/** A result record with only what a test cares about spelled out; metrics declared as the built-in suites declare them. */
export function rec(p: Partial<ResultRecord> & { point: string; metrics: ResultRecord['metrics'] }): ResultRecord {
  return {
    experiment: 'hand',
    role: 'merge',
    variant: 'v',
    axes: {},
    seed: null,
    recipe: null,
    backend: 'test',
    engineVersion: '0',
    status: 'ok',
    timings: {},
    diagnostics: [],
    samples: [],
    metricSpecs: BUILTIN_SPECS,
    ...p,
  };
}

export const scores = (math: number, chat: number, ppl: number, degenerate = 0.01): ResultRecord['metrics'] => ({
  math: { exact_match_strict: math, degenerate_rate: degenerate },
  chat: { prompt_level_strict: chat, degenerate_rate: degenerate },
  lm: { perplexity: ppl, nll_per_token: Math.log(ppl) },
});

/** Base, a math parent, a chat parent: the references every hand-made case is judged against. */
export const refs = (): ResultRecord[] => [
  rec({ point: 'base', role: 'base', variant: 'base', metrics: scores(0.1, 0.5, 10) }),
  rec({ point: 'p-math', role: 'parent', variant: 'math', metrics: scores(0.8, 0.3, 11) }),
  rec({ point: 'p-chat', role: 'parent', variant: 'chat', metrics: scores(0.1, 0.9, 10.5) }),
];

/**
 * A record scored on the same `n` items as every other made by this helper, with `k[suite]`
 * items right (the first k), so comparisons between such records pair item by item.
 */
export function itemRec(p: Partial<ResultRecord> & { point: string }, k: Record<string, number>, n = 40): ResultRecord {
  const items: NonNullable<ResultRecord['items']> = {};
  const metrics: ResultRecord['metrics'] = {};
  const metric = { math: 'exact_match_strict', chat: 'prompt_level_strict' } as Record<string, string>;
  for (const [suite, right] of Object.entries(k)) {
    const values = Array.from({ length: n }, (_, i) => (i < right ? 1 : 0));
    items[suite] = { ids: Array.from({ length: n }, (_, i) => `${suite}-${i}`), values: { [metric[suite]]: values }, weights: {} };
    metrics[suite] = { n, [metric[suite]]: right / n };
  }
  return rec({ ...p, metrics, items });
}

/** RFC 4180 reader for checking our CSV (quoted fields, doubled quotes, commas and newlines inside). */
export function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n') { row.push(field); rows.push(row); row = []; field = ''; }
    else if (c !== '\r') field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  const [header, ...body] = rows;
  return body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}
