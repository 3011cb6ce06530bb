/**
 * A record's diagnostics are typed: what the merge engine and the chain diagnostics write parses
 * as DiagnosticsEntry with nothing lost, and every committed report's records parse.
 */
import path from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { StageDiagnostics } from '../../src/merge/diagnostics.js';
import { runRecipe } from '../../src/merge/engine.js';
import { DiagnosticsEntry, type FinalVsParentsEntry, type StageDiagnosticsEntry } from '../../src/results/diagnostics.js';
import { ResultRecord } from '../../src/results/record.js';
import { loadResults } from '../../src/results/store.js';
import { computeFinalVsParents, type FinalVsParents } from '../../src/sweep/pointDiagnostics.js';
import { tmpDir, writeTinyLlama } from '../merge/tiny-llama.js';

const REPORTS = path.resolve(__dirname, '../../reports');

describe('record diagnostics', () => {
  it('accept what the engine produces, by type', () => {
    expectTypeOf<StageDiagnostics>().toExtend<StageDiagnosticsEntry>();
    expectTypeOf<FinalVsParents>().toExtend<FinalVsParentsEntry>();
  });

  it('keep every field of a real two-stage merge and its final-vs-parents entry through JSON', async () => {
    const root = await tmpDir('mergelab-record-');
    for (const [name, seed] of [['math', 2], ['chat', 3]] as const) await writeTinyLlama(path.join(root, name), { seed, baseSeed: 1, deltaScale: 0.05 });
    await writeTinyLlama(path.join(root, 'base'), { seed: 1 });
    const recipe = [
      'name: s1', 'merge_method: dare_ties', 'base_model: base', 'models:', '  - model: math', '    parameters: {weight: 1, density: 0.5}',
      '---', 'merge_method: task_arithmetic', 'base_model: base', 'models:', '  - model: s1', '    parameters: {weight: 1}', '  - model: chat', '    parameters: {weight: 1}',
    ].join('\n');
    const out = path.join(root, 'out');
    const r = await runRecipe({ text: recipe, dir: root }, { outDir: out, seed: 7, backend: 'typed' });
    const fvp = await computeFinalVsParents(out, { name: 'base', dir: path.join(root, 'base') }, [
      { name: 'math', dir: path.join(root, 'math') },
      { name: 'chat', dir: path.join(root, 'chat') },
    ]);
    const json = JSON.parse(JSON.stringify([...r.stages, fvp])) as unknown[];
    const parsed = json.map((e) => DiagnosticsEntry.parse(e));
    expect(parsed).toEqual(json);
    expect(parsed.map((e) => ('kind' in e ? e.kind : e.method))).toEqual(['dare_ties', 'task_arithmetic', 'final-vs-parents']);
    // An entry missing a field, or with a wrong type, is refused.
    const { totals: _t, ...noTotals } = json[0] as Record<string, unknown>;
    expect(DiagnosticsEntry.safeParse(noTotals).success).toBe(false);
    expect(DiagnosticsEntry.safeParse({ ...(json[0] as object), seed: 'seven' }).success).toBe(false);
  });

  it('parse in every committed report', async () => {
    for (const exp of ['seed-repro', 'zoo-can-merge']) {
      const { records } = await loadResults(path.join(REPORTS, exp, 'results.jsonl'), { repair: false });
      expect(records.length, exp).toBeGreaterThan(10);
      const merged = records.filter((x: ResultRecord) => x.role === 'merge');
      expect(merged.every((x) => x.diagnostics.length > 0), exp).toBe(true);
    }
  });
});
