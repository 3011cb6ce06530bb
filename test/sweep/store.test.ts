import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ResultRecord } from '../../src/results/record.js';
import { appendResult, comparable, loadResults, writeResults } from '../../src/results/store.js';
import { tempDir } from './helpers.js';

function rec(point: string, score: number): ResultRecord {
  return {
    experiment: 'e',
    point,
    role: 'merge',
    variant: 'v',
    axes: { density: 0.3 },
    seed: 1,
    recipe: 'merge_method: linear\n',
    backend: 'zoo/tfjs-wasm',
    engineVersion: '0.1.0',
    status: 'ok',
    metrics: { math: { exact_match_strict: score } },
    timings: { eval_s: Math.random() },
    diagnostics: [],
    samples: [{ suite: 'math', id: '1', prompt: 'Q', output: 'A', correct: true }],
  };
}

describe('results store', () => {
  it('appends whole lines and loads them back', async () => {
    const file = path.join(await tempDir('store'), 'r', 'results.jsonl');
    await appendResult(file, rec('a', 0.1));
    await appendResult(file, rec('b', 0.2));
    const { records, droppedBytes } = await loadResults(file);
    expect(droppedBytes).toBe(0);
    expect(records.map((r) => r.point)).toEqual(['a', 'b']);
    expect(comparable(records[1])).toEqual(comparable(rec('b', 0.2)));
  });

  it('drops and repairs a torn last line, so the next append starts on a fresh line', async () => {
    const file = path.join(await tempDir('store'), 'results.jsonl');
    await appendResult(file, rec('a', 0.1));
    const whole = await fs.readFile(file, 'utf8');
    const torn = JSON.stringify(rec('b', 0.2)).slice(0, 57);
    await fs.appendFile(file, torn);
    const peek = await loadResults(file, { repair: false });
    expect(peek.records.map((r) => r.point)).toEqual(['a']);
    expect(peek.droppedBytes).toBe(torn.length);
    expect(await fs.readFile(file, 'utf8')).toBe(whole + torn);
    // An append straight onto the fragment repairs first instead of gluing onto it.
    await appendResult(file, rec('c', 0.3));
    expect((await loadResults(file)).records.map((r) => r.point)).toEqual(['a', 'c']);
    await fs.appendFile(file, '{"experiment":');
    const repaired = await loadResults(file);
    expect(repaired.droppedBytes).toBe(14);
    expect((await fs.readFile(file, 'utf8')).endsWith('\n')).toBe(true);
  });

  it('rejects a corrupted line in the middle with file and line', async () => {
    const file = path.join(await tempDir('store'), 'results.jsonl');
    await writeResults(file, [rec('a', 0.1)]);
    await fs.appendFile(file, '{"point": "x"}\n');
    await appendResult(file, rec('b', 0.2));
    await expect(loadResults(file)).rejects.toThrow(/results\.jsonl:2: field experiment: .*expected a ResultRecord/);
    await fs.writeFile(file, 'not json\n');
    await expect(loadResults(file)).rejects.toThrow(/results\.jsonl:1: not a JSON line/);
  });

  it('treats a missing file as an empty store', async () => {
    expect((await loadResults(path.join(await tempDir('store'), 'none.jsonl'))).records).toEqual([]);
  });
});
