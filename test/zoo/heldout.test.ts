import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { excludedDocuments, lmEvalRows, trainedDocuments, type LmRow } from '../../src/zoo/heldout.js';
import { TASK_DATA, toJsonl } from '../../src/zoo/taskData.js';

const file = path.resolve(__dirname, '../../evals/lm.jsonl');
const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LmRow);

describe('lm held-out text', () => {
  const excluded = excludedDocuments();
  it('is what the generator produces (the file is not stale)', () => {
    expect(readFileSync(file, 'utf8')).toBe(toJsonl(lmEvalRows(TASK_DATA.lmEval, excluded)));
  });
  it('has no line that the zoo trains on, and no task formats', () => {
    const trained = trainedDocuments();
    expect(trained.size).toBeGreaterThan(10_000);
    expect(rows.length).toBe(TASK_DATA.lmEval);
    expect(rows.filter((r) => trained.has(r.text) || excluded.has(r.text))).toEqual([]);
    expect(new Set(rows.map((r) => r.text)).size).toBe(rows.length);
    for (const r of rows) expect(r.text).not.toMatch(/Question:|Answer:|####|<\|user\|>|<\|assistant\|>/);
  });
});
