import { promises as fs } from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { ResultRecord } from './record.js';
import { UserError } from '../util/errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { CHECKSUM_ALGORITHM, checksumOf } from '../util/checksum.js';

export interface LoadedResults {
  records: ResultRecord[];
  /** Things the reader tolerated (a truncated last line, a point recorded twice). */
  warnings: string[];
}

/**
 * Parse results.jsonl text. A run killed mid-append leaves a truncated last line: it is dropped
 * with a warning. Any other bad line is a UserError naming the file, the line and the field.
 * A point recorded more than once keeps its last record.
 */
export function parseResultsJsonl(text: string, file = 'results.jsonl'): LoadedResults {
  const warnings: string[] = [];
  const lines = text.split('\n');
  const lastNonEmpty = lines.reduce((acc, l, i) => (l.trim() ? i : acc), -1);
  const byPoint = new Map<string, ResultRecord>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      if (i === lastNonEmpty && !text.endsWith('\n')) {
        warnings.push(`${file}:${i + 1}: truncated last line ignored (${line.length} characters, the run was probably interrupted while writing it)`);
        continue;
      }
      throw new UserError(`${file}:${i + 1}: not valid JSON (${(e as Error).message}); expected one result record per line`, { file });
    }
    const p = ResultRecord.safeParse(raw);
    if (!p.success) {
      const issue = p.error.issues[0];
      const field = issue.path.join('.') || '(record)';
      throw new UserError(`${file}:${i + 1}: field '${field}': ${issue.message}${p.error.issues.length > 1 ? ` (and ${p.error.issues.length - 1} more problems)` : ''}`, { file, field });
    }
    if (byPoint.has(p.data.point)) warnings.push(`${file}:${i + 1}: point '${p.data.point}' recorded again; the later record is used`);
    byPoint.delete(p.data.point);
    byPoint.set(p.data.point, p.data);
  }
  return { records: [...byPoint.values()], warnings };
}

export async function readResultsJsonl(file: string): Promise<LoadedResults> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${file}: no results file; run the experiment first (mergelab run) or name a folder holding results.jsonl`, { file });
    throw e;
  }
  return parseResultsJsonl(text, file);
}

const ROLE_RANK = { base: 0, parent: 1, merge: 2 } as const;

/**
 * References first, then points by id (numbers compared as numbers): parallel runs append in
 * completion order, and the exports and report must not depend on it.
 */
export function sortRecords(records: readonly ResultRecord[]): ResultRecord[] {
  const cmp = new Intl.Collator('en', { numeric: true }).compare;
  return [...records].sort((a, b) => ROLE_RANK[a.role] - ROLE_RANK[b.role] || cmp(a.point, b.point));
}

const FIXED = ['experiment', 'point', 'role', 'variant', 'seed', 'status', 'error', 'backend', 'engineVersion', 'recipe_hash'] as const;

/** Columns in a stable order: fixed fields, then axes, metrics and timings in first-seen order. */
export function csvColumns(records: readonly ResultRecord[]): { key: string; header: string }[] {
  const axes = new Set<string>();
  const metrics = new Set<string>();
  const timings = new Set<string>();
  for (const r of records) {
    Object.keys(r.axes).forEach((a) => axes.add(a));
    for (const [s, ms] of Object.entries(r.metrics)) Object.keys(ms).forEach((m) => metrics.add(`${s}.${m}`));
    Object.keys(r.timings).forEach((t) => timings.add(t));
  }
  const fixed = FIXED.filter((f) => f !== 'recipe_hash');
  // An axis named like a fixed column (a `seed` axis) keeps the axis prefix to stay distinct.
  const axisHeader = (a: string): string => ((fixed as readonly string[]).includes(a) || metrics.has(a) ? `axis.${a}` : a);
  return [
    ...fixed.map((f) => ({ key: f, header: f })),
    ...[...axes].map((a) => ({ key: `axes\u0000${a}`, header: axisHeader(a) })),
    ...[...metrics].map((m) => ({ key: `metrics\u0000${m}`, header: m })),
    ...[...timings].map((t) => ({ key: `timings\u0000${t}`, header: `timing.${t}` })),
  ];
}

function cell(r: ResultRecord, key: string): string | number | boolean | null {
  const [group, name] = key.split('\u0000');
  if (name === undefined) {
    const v = (r as Record<string, unknown>)[group];
    return v === undefined ? null : (v as string | number | null);
  }
  if (group === 'axes') return r.axes[name] ?? null;
  if (group === 'timings') return r.timings[name] ?? null;
  const dot = name.indexOf('.');
  return r.metrics[name.slice(0, dot)]?.[name.slice(dot + 1)] ?? null;
}

/** One row per record, one column per axis and per suite.metric (samples and diagnostics stay in JSON). */
export function resultsToCsv(records: readonly ResultRecord[]): string {
  const cols = csvColumns(records);
  return stringify(records.map((r) => cols.map((c) => cell(r, c.key))), {
    header: true,
    columns: cols.map((c) => c.header),
    cast: { boolean: (b) => (b ? 'true' : 'false'), number: (n) => (Number.isFinite(n) ? String(n) : '') },
  });
}

export function resultsToJson(records: readonly ResultRecord[]): string {
  return JSON.stringify(records, null, 1) + '\n';
}

export interface ExportPaths { csv: string; json: string }

/** Checksums of the exports, in the format `xxh64sum -c results.xxh64` checks. */
export const EXPORT_SUMS = `results.${CHECKSUM_ALGORITHM}`;
const EXPORT_NAMES = ['results.csv', 'results.json'] as const;

/** Write results.csv and results.json into `outDir`, each atomically, then their checksums. */
export async function writeExports(records: readonly ResultRecord[], outDir: string): Promise<ExportPaths> {
  const csv = path.join(outDir, 'results.csv');
  const json = path.join(outDir, 'results.json');
  const texts: Record<(typeof EXPORT_NAMES)[number], Buffer> = { 'results.csv': Buffer.from(resultsToCsv(records)), 'results.json': Buffer.from(resultsToJson(records)) };
  // No checksums while the files change: a write that fails half-way (a full disk) must not leave
  // checksums that call the whole file beside them damaged.
  await fs.rm(path.join(outDir, EXPORT_SUMS), { force: true });
  await writeFileAtomic(csv, texts['results.csv']);
  await writeFileAtomic(json, texts['results.json']);
  const lines = await Promise.all(EXPORT_NAMES.map(async (n) => `${await checksumOf(texts[n])}  ${n}\n`));
  await writeFileAtomic(path.join(outDir, EXPORT_SUMS), lines.join(''));
  return { csv, json };
}

/**
 * The exports of `dir` that do not match their recorded checksums (damaged, or the run was killed
 * between writing one and its checksum), each as `path: problem`. Exports are rewritten from
 * results.jsonl at the end of every run; this only says which ones were not to be trusted.
 */
export async function checkExports(dir: string): Promise<string[]> {
  let sums: string;
  try {
    sums = await fs.readFile(path.join(dir, EXPORT_SUMS), 'utf8');
  } catch {
    return [];
  }
  const recorded = new Map<string, string>();
  for (const line of sums.split('\n')) {
    const m = /^([0-9a-f]{16}) {2}(.+)$/.exec(line);
    if (m) recorded.set(m[2], m[1]);
  }
  const problems: string[] = [];
  for (const name of EXPORT_NAMES) {
    const file = path.join(dir, name);
    const want = recorded.get(name);
    if (!want) {
      problems.push(`${file}: no checksum recorded in ${EXPORT_SUMS}`);
      continue;
    }
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(file);
    } catch (e) {
      problems.push(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code})`);
      continue;
    }
    const got = await checksumOf(bytes);
    if (got !== want) problems.push(`${file}: its ${CHECKSUM_ALGORITHM} is ${got}, ${EXPORT_SUMS} records ${want}`);
  }
  return problems;
}

/** Read reports/EXP/results.jsonl and write results.csv/json beside it (or into `outDir`). */
export async function exportResults(expDir: string, outDir = expDir): Promise<ExportPaths & LoadedResults> {
  const loaded = await readResultsJsonl(path.join(expDir, 'results.jsonl'));
  const records = sortRecords(loaded.records);
  return { records, warnings: loaded.warnings, ...(await writeExports(records, outDir)) };
}
