/**
 * Records written before suites declared their metrics carry numbers without declarations. For a
 * built-in suite the declaration is in its YAML, so it is read from there (and the page says so);
 * a suite that is not built in stays undeclared, and its metrics are neither charted nor judged.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ResultRecord } from '../results/record.js';
import type { MetricSpec } from '../results/metric.js';
import { suiteMetricSpecs } from '../eval/declare.js';
import { DEFAULT_EVALS_DIR } from '../eval/evaluate.js';
import { parseTaskSpec } from '../eval/task.js';

export async function fillDeclarations(records: readonly ResultRecord[], evalsDir = DEFAULT_EVALS_DIR): Promise<{ records: ResultRecord[]; warnings: string[] }> {
  const missing = new Set<string>();
  for (const r of records) for (const suite of Object.keys(r.metrics)) if (!r.metricSpecs?.[suite]) missing.add(suite);
  if (!missing.size) return { records: [...records], warnings: [] };
  const found = new Map<string, Record<string, MetricSpec>>();
  const taken: string[] = [];
  const none: string[] = [];
  for (const suite of missing) {
    const file = path.join(evalsDir, `${suite}.yaml`);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch {
      none.push(suite);
      continue;
    }
    found.set(suite, suiteMetricSpecs(parseTaskSpec(text, file)));
    taken.push(path.relative(process.cwd(), file) || file);
  }
  const warnings: string[] = [];
  if (taken.length) warnings.push(`records carry no metric declarations for suites ${[...found.keys()].join(', ')} (written before suites declared them): taken from ${taken.join(', ')}`);
  if (none.length) warnings.push(`records carry no metric declarations for suites ${none.join(', ')} and no eval YAML of that name declares them: their metrics are neither charted nor judged`);
  const filled = records.map((r) => {
    const add = Object.keys(r.metrics).filter((s) => !r.metricSpecs?.[s] && found.has(s));
    if (!add.length) return r;
    return { ...r, metricSpecs: { ...(r.metricSpecs ?? {}), ...Object.fromEntries(add.map((s) => [s, found.get(s)!])) } };
  });
  return { records: filled, warnings };
}
