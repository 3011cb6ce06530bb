import { describe, expect, it } from 'vitest';
import type { StageDiagnostics, TensorDiagnostics } from '../../src/merge/diagnostics.js';
import { layerTable, parseDiagnostics, standoutDiagnostics, viewStages } from '../../src/report/diagnostics.js';
import { detectCollapses } from '../../src/report/collapse.js';
import { rec, refs, scores } from './helpers.js';

function tensor(layer: number | null, name: string, o: Partial<TensorDiagnostics>): TensorDiagnostics {
  return {
    tensor: layer === null ? name : `model.layers.${layer}.${name}.weight`, layer, numel: 100,
    taskVectorNorm: { math: 1 }, cosine: {}, signConflict: 0, keptFraction: { math: 1 }, rescale: { math: 1 },
    mergedDeltaNorm: 1, mergedDeltaRelToParent: { math: 1 }, ...o,
  };
}

/** 8 layers; layers 0-3 moved 3.1x the math parent's delta; mlp signs conflict 41%. */
function seedLikeStage(): StageDiagnostics {
  const tensors: TensorDiagnostics[] = [tensor(null, 'model.embed_tokens.weight', { keptFraction: { math: 0.3 }, rescale: { math: 3.3 } })];
  for (let l = 0; l < 8; l++) {
    const rel = l < 4 ? 3.1 : 1;
    tensors.push(tensor(l, 'self_attn.q_proj', { mergedDeltaNorm: rel, mergedDeltaRelToParent: { math: rel }, signConflict: 0.05, keptFraction: { math: 0.3 }, rescale: { math: 3.3 } }));
    tensors.push(tensor(l, 'mlp.up_proj', { mergedDeltaNorm: rel, mergedDeltaRelToParent: { math: rel }, signConflict: 0.41, keptFraction: { math: 0.3 }, rescale: { math: 3.3 } }));
  }
  const { tensor: _t, layer: _l, ...totals } = tensors[1];
  return { stage: 'stage1', method: 'dare_ties', rescaleRule: 'inverse_density', seed: 1, backend: 'test', tensors, totals, warnings: [] };
}

describe('diagnostics that stand out', () => {
  it('names the layer run, the factor and the parent, the conflicting tensor kind and the DARE numbers', () => {
    const texts = standoutDiagnostics(viewStages([seedLikeStage()])).map((s) => s.text);
    expect(texts).toContain("merged delta norm 3.1x the math parent's in layers 0-3");
    expect(texts).toContain('sign conflicts 41% in mlp tensors');
    expect(texts).toContain("kept fraction 0.3 of math's delta, rescale x3.3 (inverse_density)");
    expect(texts.some((t) => /attention/.test(t))).toBe(false);
  });

  it('reports a parent whose contribution vanished', () => {
    const st = seedLikeStage();
    for (const t of st.tensors) if (t.layer !== null && t.layer >= 6) { t.mergedDeltaNorm = 0.2; t.mergedDeltaRelToParent = { math: 0.2 }; }
    const texts = standoutDiagnostics(viewStages([st])).map((s) => s.text);
    expect(texts.some((t) => t.startsWith("merged delta only 0.2x the math parent's in layers 6-7"))).toBe(true);
  });

  it('is quiet for an unremarkable merge', () => {
    const tensors = [0, 1, 2].map((l) => tensor(l, 'mlp.up_proj', { signConflict: 0.1 }));
    expect(standoutDiagnostics(viewStages([{ ...seedLikeStage(), tensors, rescaleRule: 'none' }]))).toEqual([]);
  });

  it('reads JSON diagnostics leniently: Infinity as null, unknown fields, foreign entries', () => {
    const st = JSON.parse(JSON.stringify(seedLikeStage()));
    st.tensors[0].mergedDeltaRelToParent = { math: null, chat: 2 };
    st.newField = { anything: true };
    const parsed = parseDiagnostics([st, { note: 'not diagnostics' }, 42]);
    expect(parsed.stages).toHaveLength(1);
    expect(parsed.skipped).toBe(2);
    const rows = layerTable(parsed.stages[0]);
    expect(rows.map((r) => r.label)).toEqual(['embed', '0', '1', '2', '3', '4', '5', '6', '7']);
    expect(rows[1].mergedDeltaRelToParent.math).toBeCloseTo(3.1);
    expect(rows[1].signConflict).toBeCloseTo(0.23);
  });

  it('attaches the standouts to the collapse flag of the point', () => {
    const bad = rec({ point: 'seedlike', metrics: scores(0.05, 0.2, 60), diagnostics: [seedLikeStage()] });
    const [f] = detectCollapses([...refs(), bad]);
    expect(f.standouts[0].text).toBe("merged delta norm 3.1x the math parent's in layers 0-3");
  });
});

describe('final-vs-parents entries', () => {
  it('names the original parent whose task vector the chain lost, and where', () => {
    const tensors = [0, 1, 2, 3, 4, 5].map((l) => ({
      tensor: `model.layers.${l}.mlp.up_proj.weight`, layer: l, numel: 100,
      taskVectorNorm: { math: 1, chat: 1 }, mergedDeltaNorm: 1.1, mergedDeltaRelToParent: { math: 1.1, chat: 1.1 },
      retained: { math: l < 3 ? 0.2 : 0.9, chat: 0.95 }, signConflict: 0.1,
    }));
    const entry = { kind: 'final-vs-parents', stage: 'final vs parents', method: 'final-vs-parents', rescaleRule: 'none', tensors, layers: [], totals: tensors[0], warnings: [] };
    const texts = standoutDiagnostics(parseDiagnostics([entry]).stages).map((s) => s.text);
    expect(texts).toEqual(["the final model keeps only 0.2 of math's task vector in layers 0-2"]);
  });
});

describe('repeated findings', () => {
  it('are said once, naming every stage that showed them in stage order', () => {
    const st = seedLikeStage();
    const last = { ...JSON.parse(JSON.stringify(st)), stage: 'final vs parents', rescaleRule: 'none' };
    for (const t of last.tensors) { t.keptFraction = { math: 1 }; t.rescale = { math: 1 }; t.signConflict = 0; }
    const texts = standoutDiagnostics(viewStages([st, last])).map((s) => s.text);
    expect(texts.filter((t) => t.includes('3.1x'))).toEqual(["stage1, final vs parents: merged delta norm 3.1x the math parent's in layers 0-3"]);
  });
});
