import { afterAll, describe, expect, it } from 'vitest';
import { rm, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportResults, parseResultsJsonl, resultsToCsv } from '../../src/results/export.js';
import { UserError } from '../../src/util/errors.js';
import { parseCsv, rec, refs, scores } from './helpers.js';

const temps: string[] = [];
const track = (dir: string): string => (temps.push(dir), dir);
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

const merges = () => [
  rec({ point: 'm1', axes: { density: 0.3, weight: 1, rescale: 'l1', seed: 1 }, seed: 1, metrics: scores(0.5, 0.6, 12), timings: { merge_s: 1.5 } }),
  rec({ point: 'm2', axes: { density: 0.7, weight: 0.5, rescale: 'inverse_density', seed: 2 }, seed: 2, metrics: scores(0.4, 0.7, 13) }),
  rec({ point: 'bad', status: 'failed', error: 'merge failed: "quoted", comma', axes: { density: 0.1 }, metrics: {} }),
];

describe('results export', () => {
  it('writes one CSV column per axis and per suite.metric', () => {
    const rows: Record<string, string>[] = parseCsv(resultsToCsv([...refs(), ...merges()]));
    expect(rows).toHaveLength(6);
    const cols = Object.keys(rows[0]);
    for (const c of ['point', 'role', 'variant', 'seed', 'status', 'density', 'weight', 'rescale', 'axis.seed', 'math.exact_match_strict', 'chat.prompt_level_strict', 'lm.perplexity', 'math.degenerate_rate', 'timing.merge_s']) expect(cols).toContain(c);
    const m1 = rows.find((r) => r.point === 'm1')!;
    expect(m1.density).toBe('0.3');
    expect(m1.rescale).toBe('l1');
    expect(Number(m1['math.exact_match_strict'])).toBe(0.5);
    expect(Number(m1['lm.perplexity'])).toBe(12);
    const bad = rows.find((r) => r.point === 'bad')!;
    expect(bad.status).toBe('failed');
    expect(bad.error).toBe('merge failed: "quoted", comma');
    expect(bad['math.exact_match_strict']).toBe('');
    expect(rows.find((r) => r.point === 'base')!.density).toBe('');
  });

  it('tolerates a truncated last line and keeps the last record of a repeated point', () => {
    const lines = [...refs(), ...merges()].map((r) => JSON.stringify(r));
    const again = JSON.stringify({ ...JSON.parse(lines[3]), variant: 'again' });
    const text = [...lines, again].join('\n') + '\n' + lines[4].slice(0, 40);
    const { records, warnings } = parseResultsJsonl(text, 'r.jsonl');
    expect(records).toHaveLength(6);
    expect(records.find((r) => r.point === 'm1')!.variant).toBe('again');
    expect(warnings.some((w) => /r\.jsonl:8: truncated last line/.test(w))).toBe(true);
  });

  it('rejects a broken line in the middle, or a wrong field, naming file, line and field', () => {
    const good = JSON.stringify(refs()[0]);
    expect(() => parseResultsJsonl(`${good}\n{"broken\n${good}\n`, 'x.jsonl')).toThrow(/x\.jsonl:2: not valid JSON/);
    const wrong = JSON.stringify({ ...refs()[0], role: 'boss' });
    try {
      parseResultsJsonl(`${good}\n${wrong}\n`, 'x.jsonl');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).toMatch(/x\.jsonl:2: field 'role'/);
    }
  });

  it('writes results.csv and results.json beside the JSONL, with no temporary files left', async () => {
    const dir = track(await mkdtemp(path.join(tmpdir(), 'mergelab-export-')));
    const all = [...refs(), ...merges()];
    await writeFile(path.join(dir, 'results.jsonl'), all.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const out = await exportResults(dir);
    const json = JSON.parse(await readFile(out.json, 'utf8')) as typeof all;
    // references first, then points by id, whatever the append order
    expect(json.map((r) => r.point)).toEqual(['base', 'p-chat', 'p-math', 'bad', 'm1', 'm2']);
    expect(json).toEqual(expect.arrayContaining(all));
    expect((await readFile(out.csv, 'utf8')).split('\n')[0]).toMatch(/^experiment,point,role,variant,seed,status/);
    expect((await readdir(dir)).sort()).toEqual(['results.csv', 'results.json', 'results.jsonl', 'results.xxh64']);
    await expect(exportResults(path.join(dir, 'missing'))).rejects.toThrow(/no results file/);
  });
});
