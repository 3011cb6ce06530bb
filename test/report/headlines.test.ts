import { describe, expect, it } from 'vitest';
import { buildReportModel } from '../../src/report/generate.js';
import { explainVariants, stageNames, spearman } from '../../src/report/explain.js';
import { factorsOf } from '../../src/report/factors.js';
import { listMetrics } from '../../src/report/metrics.js';
import { Noise } from '../../src/report/noise.js';
import { resolveOptions } from '../../src/report/options.js';
import type { ResultRecord } from '../../src/results/record.js';
import { itemRec } from './helpers.js';

const CHAIN = 'name: first\nmerge_method: dare_ties\n---\nname: second\nmerge_method: task_arithmetic\n';
const FIRST = 'name: first\nmerge_method: dare_ties\n';

/** Base, parents and a sweep on the same 40 items per suite: a chain over density x seed and its first stage alone. */
function sweep(): ResultRecord[] {
  const out = [
    itemRec({ point: 'base', role: 'base', variant: 'base' }, { math: 1, chat: 2 }),
    itemRec({ point: 'p-math', role: 'parent', variant: 'math' }, { math: 30, chat: 1 }),
    itemRec({ point: 'p-chat', role: 'parent', variant: 'chat' }, { math: 0, chat: 28 }),
  ];
  // The chain keeps math only at high density; seeds change it by one item.
  const math = { 0.1: 2, 0.5: 12, 1: 20 } as Record<number, number>;
  for (const density of [0.1, 0.5, 1]) {
    for (const seed of [1, 2]) {
      out.push(itemRec({ point: `chain d${density} s${seed}`, variant: 'chain', axes: { density }, seed, recipe: CHAIN }, { math: math[density] + seed - 1, chat: 20 }));
      out.push(itemRec({ point: `alone d${density} s${seed}`, variant: 'alone', axes: { density }, seed, recipe: FIRST }, { math: 29, chat: 1 }));
    }
  }
  out.push(itemRec({ point: 'ta', variant: 'task_arithmetic', axes: {} }, { math: 21, chat: 20 }));
  return out;
}

describe('explanations', () => {
  it('reads stage names of a multi-document recipe, numbering unnamed ones', () => {
    expect(stageNames(CHAIN)).toEqual(['first', 'second']);
    expect(stageNames('merge_method: linear\n')).toEqual(['stage 1']);
    expect(stageNames(null)).toEqual([]);
  });

  it('finds density, not the seed, moving the chain\'s math, and the last stage losing it, from the records', () => {
    const rs = sweep();
    const metrics = listMetrics(rs);
    const noise = new Noise(rs, metrics);
    const [chain] = explainVariants(rs, metrics, noise, { expect: { alone: ['math'] }, skillOwner: (m) => (m.suite === 'math' ? 'math' : 'chat'), reference: () => undefined });
    expect(chain.variant).toBe('chain');
    expect(factorsOf(rs.filter((r) => r.variant === 'chain')).map((f) => f.name)).toEqual(['density', 'seed']);
    const math = chain.effects.filter((e) => e.metric.key === 'math.exact_match_strict');
    const density = math.find((e) => e.factor.name === 'density')!;
    expect(density.best).toBe('1');
    expect(density.levels.find((l) => l.level === '0.1')!.change!.verdict).toBe('worse');
    expect(math.find((e) => e.factor.name === 'seed')!.levels.find((l) => l.change)!.change!.verdict).toBe('within noise');
    expect(chain.text.effects[0]).toMatch(/^In 'chain' \(6 points\), math\.exact_match_strict depends most on density: 0\.51 at 1 against 0\.06 at 0\.1 \(-0\.45 \[.*\]; 2 of 2 other levels worse beyond noise\)\. Within noise: seed/);
    // Stage: every setting of the chain against the first stage alone at the same density and seed.
    expect(chain.stage!.rows.map((r) => r.seeds)).toEqual([[1, 2], [1, 2], [1, 2]]);
    expect(chain.stage!.rows.every((r) => r.metric.key === 'math.exact_match_strict')).toBe(true);
    expect(chain.text.stage[0]).toMatch(/^'chain' loses math\.exact_match_strict in its last stage 'second': in 3 of 3 settings it scores below stage 'first' alone \('alone', same density and seed\) beyond noise/);
  });

  it('puts the recommendation first among the findings, with its intervals and its peers within noise', () => {
    const rs = sweep();
    const model = buildReportModel(rs, resolveOptions(undefined, { highlight: [{ label: 'the low-density chain', variant: 'chain', axes: { density: 0.1 } }] }), 'exp');
    const rec = model.recommendations[0];
    // task arithmetic keeps 21/30 of math and 20/28 of chat; the density-1 chain 20.5/30 and 20/28
    expect(rec.best.row.group.label).toMatch(/^task_arithmetic/);
    expect(rec.peers.map((p) => p.row.group.label)).toEqual([expect.stringMatching(/^chain density=1/)]);
    expect(model.headlines[0]).toMatch(/^To keep every parent's skill, use 'task_arithmetic[^']*': it keeps 70% \[\d+%, \d+%\] of math's and 71% \[\d+%, \d+%\] of chat's skill \(math\.exact_match_strict 0\.53 \[0\.\d\d, 0\.\d\d\], chat\.prompt_level_strict 0\.50 \[0\.\d\d, 0\.\d\d\]\); 1 other setting is not worse within the noise\.$/);
    expect(model.headlines[1]).toMatch(/^The low-density chain \('chain density=0\.1[^']*', 2 seeds\) keeps 8% .* worse than the recommendation beyond the noise: -6\d points \[/);
  });

  it('ranks with Spearman\'s rho, ties averaged', () => {
    expect(spearman([1, 2, 3, 4], [10, 20, 30, 40])).toBeCloseTo(1);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1);
    expect(spearman([1, 1, 2, 2], [1, 2, 3, 4])).toBeCloseTo(0.894, 3);
    expect(Number.isNaN(spearman([1, 1, 1], [1, 2, 3]))).toBe(true);
  });
});
