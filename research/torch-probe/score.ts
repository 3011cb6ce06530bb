/**
 * Scores the generations of bench/torch-probe/run_all.py with mergelab's own evaluator (the same
 * filters, metrics and IFEval checkers as `mergelab eval`), one row per variant and model.
 *
 *   npx tsx bench/torch-probe/score.ts GENS_JSONL_GZ [OUT_JSON]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { loadSuites, runSuite } from '../../src/eval/evaluate.js';
import type { EvalBackend, GenerateRequest, Generation } from '../../src/eval/backends/types.js';

interface GenLine { variant: string; model: string; suite: string; id: string; text: string }
interface MetaLine { meta: { variant: { name: string }; train_s: number; math_delta: { median_rel: number }; chat_delta: { median_rel: number }; cosine: number } }

/** Serves recorded generations by request id. */
class ReplayBackend implements EvalBackend {
  readonly name = 'replay:torch-probe';
  constructor(private readonly texts: Map<string, string>) {}
  async generate(reqs: readonly GenerateRequest[]): Promise<Generation[]> {
    return reqs.map((r) => {
      const text = this.texts.get(r.id);
      if (text === undefined) throw new Error(`no recorded generation for ${r.id}`);
      return { text, hitLimit: [...text].length >= r.maxNewTokens };
    });
  }
  async score(): Promise<never> {
    throw new Error('replay backend cannot score');
  }
  dispose(): void {}
}

async function main(): Promise<void> {
  const file = process.argv[2];
  const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as GenLine | MetaLine);
  const metas = new Map<string, MetaLine['meta']>();
  const groups = new Map<string, Map<string, Map<string, string>>>(); // variant/model -> suite -> id -> text
  for (const l of lines) {
    if ('meta' in l) {
      metas.set(l.meta.variant.name, l.meta);
      continue;
    }
    const key = `${l.variant}\t${l.model}`;
    if (!groups.has(key)) groups.set(key, new Map());
    const g = groups.get(key)!;
    if (!g.has(l.suite)) g.set(l.suite, new Map());
    g.get(l.suite)!.set(l.id, l.text);
  }
  const suites = await loadSuites({ suites: ['math', 'chat'] });
  const rows: Array<Record<string, string | number>> = [];
  for (const [key, bySuite] of groups) {
    const [variant, model] = key.split('\t');
    const row: Record<string, string | number> = { variant, model };
    for (const task of suites) {
      const texts = bySuite.get(task.spec.task);
      if (!texts) continue;
      const limit = texts.size;
      const res = await runSuite(task, new ReplayBackend(texts), { limit });
      if (task.spec.task === 'math') row.math = res.metrics.exact_match_strict;
      else row.chat = res.metrics.prompt_level_strict;
    }
    rows.push(row);
  }
  const variants = [...new Set(rows.map((r) => r.variant as string))];
  for (const v of variants) {
    const m = metas.get(v);
    console.log(`\n${v}: train ${m?.train_s}s, median delta math ${((m?.math_delta.median_rel ?? 0) * 100).toFixed(2)}% chat ${((m?.chat_delta.median_rel ?? 0) * 100).toFixed(2)}%, cosine ${m?.cosine.toFixed(3)}`);
    for (const r of rows.filter((x) => x.variant === v)) console.log(`  ${String(r.model).padEnd(20)} math ${Number(r.math).toFixed(3)}  chat ${Number(r.chat).toFixed(3)}`);
  }
  if (process.argv[3]) writeFileSync(process.argv[3], JSON.stringify({ metas: Object.fromEntries(metas), rows }, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
