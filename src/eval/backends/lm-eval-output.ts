/**
 * Reading lm-evaluation-harness output into our metrics and samples. Its layout (lm_eval's
 * EvaluationTracker): `OUTPUT_PATH/<model name sanitized>/results_<ISO datetime>.json` and, with
 * --log_samples, `samples_<task>_<datetime>.jsonl` beside it, one line per document and filter.
 * Metric keys are `METRIC,FILTER` with `METRIC_stderr,FILTER` beside them (stderr may be "N/A").
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ITEMS_UNIT, aggregate, type Aggregation, type MetricSpec, type SuiteItems } from '../../results/metric.js';
import { EvalBackendError } from './process.js';

export interface EvalSampleOut { suite: string; id: string; prompt: string; output: string; correct?: boolean }

/** lm-eval's filter names as our suites name them; others keep their name with `-` as `_`. */
const FILTER_ALIAS: Record<string, string> = { 'strict-match': 'strict', 'flexible-extract': 'flexible' };
/** IFEval's accuracies as our chat suite names them. */
const METRIC_ALIAS: Record<string, string> = {
  prompt_level_strict_acc: 'prompt_level_strict',
  prompt_level_loose_acc: 'prompt_level_loose',
  inst_level_strict_acc: 'inst_level_strict',
  inst_level_loose_acc: 'inst_level_loose',
};

/** `exact_match,strict-match` -> `exact_match_strict`; `exact_match_stderr,strict-match` -> `exact_match_strict_stderr`. */
export function metricName(key: string): string | null {
  const comma = key.indexOf(',');
  if (comma < 0) return null;
  let metric = key.slice(0, comma);
  const filter = key.slice(comma + 1);
  const stderr = metric.endsWith('_stderr');
  if (stderr) metric = metric.slice(0, -'_stderr'.length);
  metric = METRIC_ALIAS[metric] ?? metric;
  const f = filter === 'none' ? '' : `_${FILTER_ALIAS[filter] ?? filter.replace(/\W+/g, '_')}`;
  return `${metric}${f}${stderr ? '_stderr' : ''}`;
}

const resultsFile = z.object({
  results: z.record(z.string(), z.record(z.string(), z.unknown())),
  /** Task -> metric (no filter) -> direction. */
  higher_is_better: z.record(z.string(), z.record(z.string(), z.boolean().nullable())).optional(),
  'n-samples': z.record(z.string(), z.object({ original: z.number(), effective: z.number() })).optional(),
  lm_eval_version: z.string().optional(),
  model_name: z.string().optional(),
});
export type LmEvalResults = z.output<typeof resultsFile>;

export function parseResults(text: string, file: string): LmEvalResults {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new EvalBackendError(`${file}: not JSON (${(e as Error).message})`);
  }
  const r = resultsFile.safeParse(raw);
  if (!r.success) throw new EvalBackendError(`${file}: not an lm-eval results file: ${r.error.issues.map((i) => `field "${i.path.join('.')}": ${i.message}`).join('; ')}`);
  return r.data;
}

/** One task's metrics in our names, stderr kept as `NAME_stderr`, plus `n` (documents scored). */
export function taskMetrics(res: LmEvalResults, task: string, file: string): Record<string, number> {
  const r = res.results[task];
  if (!r) throw new EvalBackendError(`${file}: no results for task ${task} (tasks there: ${Object.keys(res.results).join(', ') || 'none'})`);
  const out: Record<string, number> = {};
  const n = res['n-samples']?.[task]?.effective ?? (typeof r.sample_len === 'number' ? r.sample_len : undefined);
  if (n !== undefined) out.n = n;
  for (const [k, v] of Object.entries(r)) {
    const name = metricName(k);
    if (name === null) continue;
    const x = typeof v === 'boolean' ? Number(v) : v;
    if (typeof x === 'number' && Number.isFinite(x)) out[name] = x;
  }
  return out;
}

const sampleLine = z.object({
  doc_id: z.number().int(),
  arguments: z.union([z.record(z.string(), z.record(z.string(), z.unknown())), z.array(z.array(z.unknown()))]),
  resps: z.array(z.array(z.unknown())),
  filtered_resps: z.array(z.unknown()),
  filter: z.string().optional(),
  metrics: z.array(z.string()).optional(),
}).passthrough();

function firstText(v: unknown): string {
  let x = v;
  while (Array.isArray(x)) x = x[0];
  return typeof x === 'string' ? x : x === undefined ? '' : JSON.stringify(x);
}

/**
 * Generations of one task: the first filter's line per document (raw model output; correct when
 * the line's first metric is 1/true), the first `keep` documents.
 */
export function parseSamples(text: string, suite: string, keep: number, file: string): EvalSampleOut[] {
  const byDoc = new Map<number, EvalSampleOut>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      throw new EvalBackendError(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const r = sampleLine.safeParse(raw);
    if (!r.success) throw new EvalBackendError(`${file}:${i + 1}: not an lm-eval sample: ${r.error.issues.map((x) => `field "${x.path.join('.')}": ${x.message}`).join('; ')}`);
    const s = r.data;
    if (byDoc.has(s.doc_id)) return;
    const args = Array.isArray(s.arguments) ? s.arguments[0]?.[0] : (s.arguments.gen_args_0 as Record<string, unknown> | undefined)?.arg_0;
    const m = s.metrics?.[0];
    const mv = m === undefined ? undefined : (s as Record<string, unknown>)[m];
    byDoc.set(s.doc_id, {
      suite,
      id: String(s.doc_id),
      prompt: typeof args === 'string' ? args : '',
      output: firstText(s.resps),
      ...(typeof mv === 'number' || typeof mv === 'boolean' ? { correct: Number(mv) === 1 } : {}),
    });
  });
  return [...byDoc.entries()].sort((a, b) => a[0] - b[0]).slice(0, keep).map(([, s]) => s);
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

/** The newest results file under `outDir` and the samples files beside it, by task. */
export async function findOutput(outDir: string): Promise<{ results: string; samples: Map<string, string> }> {
  const files = await walk(outDir).catch(() => [] as string[]);
  const results = files.filter((f) => /^results_.*\.json$/.test(path.basename(f))).sort((a, b) => (path.basename(a) < path.basename(b) ? -1 : 1));
  if (results.length === 0) throw new EvalBackendError(`lm_eval wrote no results_*.json under ${outDir}`);
  const newest = results[results.length - 1];
  const stamp = path.basename(newest).slice('results_'.length, -'.json'.length);
  const samples = new Map<string, string>();
  for (const f of files) {
    const b = path.basename(f);
    if (path.dirname(f) !== path.dirname(newest) || !b.startsWith('samples_') || !b.endsWith(`_${stamp}.jsonl`)) continue;
    samples.set(b.slice('samples_'.length, -(`_${stamp}.jsonl`).length), f);
  }
  return { results: newest, samples };
}

/** lm-eval's per-document value of a metric, as `samples_*.jsonl` writes it, in our terms: item value, weight and how they add up. */
type ItemValue = { value: number; weight: number; aggregation: Aggregation };

/**
 * One document's value of `metric`: a 0/1 or a number (mean over documents); a list of verdicts
 * (IFEval's instruction-level accuracy: instructions followed over instructions); a
 * `[loglikelihood, size]` pair (lm-eval's weighted perplexities and bits per byte). Null for
 * other shapes (a metric aggregated by its own function over raw pairs, such as SQuAD's F1).
 */
function itemValue(metric: string, v: unknown): ItemValue | null {
  if (typeof v === 'boolean') return { value: Number(v), weight: 1, aggregation: 'proportion' };
  if (typeof v === 'number' && Number.isFinite(v)) return { value: v, weight: 1, aggregation: v === 0 || v === 1 ? 'proportion' : 'ratio' };
  if (!Array.isArray(v) || v.length === 0) return null;
  if (v.every((x) => typeof x === 'boolean')) return { value: v.filter(Boolean).length, weight: v.length, aggregation: 'ratio' };
  if (v.length === 2 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    const [ll, size] = v as [number, number];
    if (metric.endsWith('perplexity')) return { value: -ll, weight: size, aggregation: 'exp_ratio' };
    if (metric === 'bits_per_byte') return { value: -ll / Math.LN2, weight: size, aggregation: 'ratio' };
  }
  return null;
}

export interface TaskOutcomes {
  /** Per-document outcomes by our metric name, documents in doc_id order. */
  items: SuiteItems;
  /** How each metric with per-document outcomes adds up. */
  aggregation: Record<string, Aggregation>;
}

/**
 * Per-document outcomes of one task from its samples file: for each line (one document under one
 * filter), each metric it lists, keyed by doc_id; the value lm-eval computed from that line's
 * `filtered_resps` against its `target`. A metric is kept only if every document has it in one
 * shape and its outcomes add up to the score of the results file (`reported`), so the report's
 * intervals and paired comparisons describe the number shown.
 */
export function taskOutcomes(text: string, reported: Record<string, number>, file: string): TaskOutcomes {
  const perDoc = new Map<number, Map<string, ItemValue>>();
  const bad = new Set<string>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw new EvalBackendError(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const r = sampleLine.safeParse(raw);
    if (!r.success) throw new EvalBackendError(`${file}:${i + 1}: not an lm-eval sample: ${r.error.issues.map((x) => `field "${x.path.join('.')}": ${x.message}`).join('; ')}`);
    const doc = perDoc.get(r.data.doc_id) ?? new Map<string, ItemValue>();
    perDoc.set(r.data.doc_id, doc);
    for (const m of r.data.metrics ?? []) {
      const name = metricName(`${m},${r.data.filter ?? 'none'}`);
      if (name === null) continue;
      const v = itemValue(m, raw[m]);
      if (v === null) bad.add(name);
      else doc.set(name, v);
    }
  });
  const docs = [...perDoc.keys()].sort((a, b) => a - b);
  const names = new Set([...perDoc.values()].flatMap((d) => [...d.keys()]));
  const items: SuiteItems = { ids: docs.map(String), values: {}, weights: {} };
  const aggregation: Record<string, Aggregation> = {};
  for (const name of names) {
    if (bad.has(name) || !(name in reported)) continue;
    const vs = docs.map((d) => perDoc.get(d)!.get(name));
    if (vs.some((v) => v === undefined)) continue;
    const all = vs as ItemValue[];
    // A mix of 0/1 and other numbers is a mean; a mix of anything else is not one metric.
    const kinds = new Set(all.map((v) => v.aggregation));
    const agg: Aggregation | null = kinds.size === 1 ? all[0].aggregation : [...kinds].every((k) => k === 'proportion' || k === 'ratio') && all.every((v) => v.weight === 1) ? 'ratio' : null;
    if (agg === null) continue;
    const values = all.map((v) => v.value);
    const weights = all.map((v) => v.weight);
    const score = aggregate({ aggregation: agg }, values, weights);
    if (!(Math.abs(score - reported[name]) <= 1e-6 * Math.max(1, Math.abs(reported[name])))) continue;
    items.values[name] = values;
    if (agg !== 'proportion') items.weights[name] = weights;
    aggregation[name] = agg;
  }
  return { items, aggregation };
}

const STDERR: MetricSpec = { role: 'count', unit: 'standard error (lm-eval)' };

/**
 * What each metric of one task is, from the results file's `higher_is_better` (a metric lm-eval
 * gives no direction stays undeclared): a higher-is-better metric is a skill, a lower-is-better
 * one (perplexity, bits per byte) a quality; aggregation as the samples show it, else a
 * proportion for a score in [0, 1] and a mean otherwise; each `_stderr` beside it as a count
 * (recorded, neither charted nor judged).
 */
export function taskSpecs(res: LmEvalResults, task: string, metrics: Record<string, number>, aggregation: Record<string, Aggregation>): Record<string, MetricSpec> {
  const hib = res.higher_is_better?.[task] ?? {};
  const specs: Record<string, MetricSpec> = {};
  if ('n' in metrics) specs.n = { role: 'count', unit: ITEMS_UNIT };
  const raw = res.results[task] ?? {};
  for (const key of Object.keys(raw)) {
    const name = metricName(key);
    if (name === null || !(name in metrics)) continue;
    const metric = key.slice(0, key.indexOf(','));
    if (metric.endsWith('_stderr')) {
      specs[name] = STDERR;
      continue;
    }
    const higher = hib[metric];
    if (typeof higher !== 'boolean') continue;
    const v = metrics[name];
    const agg = aggregation[name] ?? (v >= 0 && v <= 1 ? 'proportion' : 'ratio');
    const unit = agg === 'proportion' ? 'share of documents' : agg === 'exp_ratio' ? 'perplexity' : metric === 'bits_per_byte' ? 'bits per byte' : metric.startsWith('inst_level') ? 'share of instructions' : 'mean per document';
    specs[name] = { role: higher ? 'skill' : 'quality', higherIsBetter: higher, aggregation: agg, unit };
  }
  return specs;
}
