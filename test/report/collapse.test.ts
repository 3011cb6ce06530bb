import { describe, expect, it } from 'vitest';
import { detectCollapses, checkPoint, makeJudge, references } from '../../src/report/collapse.js';
import { listMetrics } from '../../src/report/metrics.js';
import { DEFAULT_THRESHOLDS, camelizeKeys } from '../../src/report/options.js';
import { itemRec, rec, refs, scores } from './helpers.js';

const flagsFor = (...merges: ReturnType<typeof rec>[]) => detectCollapses([...refs(), ...merges]);

describe('collapse rules on hand-made results', () => {
  it('leaves a good merge alone', () => {
    expect(flagsFor(rec({ point: 'good', metrics: scores(0.7, 0.8, 11) }))).toEqual([]);
  });

  it('flags a point bad on one skill only, naming that skill and the best parent', () => {
    // math 0.3 < 0.5 x 0.8 = 0.4, but above the base's 0.1; chat is fine.
    const [f, ...rest] = flagsFor(rec({ point: 'math-lost', metrics: scores(0.3, 0.85, 11) }));
    expect(rest).toEqual([]);
    expect(f.point).toBe('math-lost');
    expect(f.violations).toHaveLength(1);
    const v = f.violations[0];
    expect(v.rule).toBe('below_parent_fraction');
    expect(v.metric).toBe('math.exact_match_strict');
    expect(v.value).toBe(0.3);
    expect(v.reference).toEqual({ role: 'parent', name: 'math', value: 0.8 });
    expect(v.limit).toBeCloseTo(0.4);
    expect(v.message).toContain('math.exact_match_strict');
  });

  it('holds a variant only to the skills of the parents it is meant to keep (report.expect)', () => {
    // A merge of the math model alone keeps math and, like the math parent, cannot chat.
    const mathOnly = rec({ point: 'math-only', variant: 'stage1_only', metrics: scores(0.75, 0.1, 11) });
    expect(flagsFor(mathOnly).map((f) => f.violations.map((v) => v.metric))).toEqual([['chat.prompt_level_strict', 'chat.prompt_level_strict']]);
    expect(detectCollapses([...refs(), mathOnly], DEFAULT_THRESHOLDS, undefined, { stage1_only: ['math'] })).toEqual([]);
    // Its own skill is still checked, and other variants are held to every skill.
    const lost = rec({ point: 'lost', variant: 'stage1_only', metrics: scores(0.2, 0.1, 11) });
    const other = rec({ point: 'other', variant: 'v', metrics: scores(0.75, 0.1, 11) });
    const flags = detectCollapses([...refs(), lost, other], DEFAULT_THRESHOLDS, undefined, { stage1_only: ['math'] });
    expect(flags.map((f) => [f.point, f.violations.map((v) => v.metric)])).toEqual([
      ['other', ['chat.prompt_level_strict', 'chat.prompt_level_strict']],
      ['lost', ['math.exact_match_strict']],
    ]);
  });

  it('keeps variant names under report.expect as written (no snake_case renaming)', () => {
    expect(camelizeKeys({ sample_per_point: 1, expect: { stage1_only: ['math'] } })).toEqual({ samplePerPoint: 1, expect: { stage1_only: ['math'] } });
  });

  it('flags exploding perplexity (the lm suite\'s headline quality metric) while exact match is still fine', () => {
    const [f] = flagsFor(rec({ point: 'ppl', metrics: scores(0.78, 0.88, 40) }));
    expect(f.violations.map((v) => [v.rule, v.metric])).toEqual([['quality_vs_base', 'lm.perplexity']]);
    const v = f.violations[0];
    expect(v.value).toBe(40);
    expect(v.reference).toEqual({ role: 'base', name: 'base', value: 10 });
    expect(v.limit).toBeCloseTo(15);
    expect(v.message).toMatch(/4x above the base/);
  });

  it('flags a score below the base even when above half the best parent', () => {
    // chat 0.48: above 0.45 (= 0.5 x 0.9) but below the base's 0.5.
    const [f] = flagsFor(rec({ point: 'below-base', metrics: scores(0.7, 0.48, 11) }));
    expect(f.violations.map((v) => [v.rule, v.metric])).toEqual([['below_base', 'chat.prompt_level_strict']]);
    expect(flagsFor(rec({ point: 'x', metrics: scores(0.7, 0.48, 11) }))).toHaveLength(1);
  });

  it('flags degenerate outputs above the threshold, not at it', () => {
    const over = flagsFor(rec({ point: 'deg', metrics: scores(0.7, 0.8, 11, 0.25) }));
    expect(over[0].violations.map((v) => [v.rule, v.metric])).toEqual([['quality_rate', 'math.degenerate_rate'], ['quality_rate', 'chat.degenerate_rate']]);
    expect(flagsFor(rec({ point: 'deg', metrics: scores(0.7, 0.8, 11, 0.2) }))).toEqual([]);
  });

  it('honours configured thresholds', () => {
    const all = [...refs(), rec({ point: 'math-lost', metrics: scores(0.3, 0.85, 14) })];
    expect(detectCollapses(all, { ...DEFAULT_THRESHOLDS, parentFraction: 0.3 })).toEqual([]);
    expect(detectCollapses(all, { ...DEFAULT_THRESHOLDS, parentFraction: 0.3, perplexityFactor: 1.2 })[0].violations.map((v) => v.rule)).toEqual(['quality_vs_base']);
    const belowBase = [...refs(), rec({ point: 'b', metrics: scores(0.7, 0.48, 11) })];
    expect(detectCollapses(belowBase, { ...DEFAULT_THRESHOLDS, baseMargin: 0.05 })).toEqual([]);
    expect(detectCollapses(belowBase, { ...DEFAULT_THRESHOLDS, belowBase: false })).toEqual([]);
  });

  it('compares quality with the best parent when there is no base', () => {
    const noBase = refs().filter((r) => r.role !== 'base');
    const [f] = detectCollapses([...noBase, rec({ point: 'p', metrics: scores(0.7, 0.8, 20) })]);
    expect(f.violations.map((v) => v.rule)).toEqual(['quality_vs_base']);
    // the best parent on perplexity is the one with the lowest: it is declared lower-is-better
    expect(f.violations[0].reference).toEqual({ role: 'parent', name: 'chat', value: 10.5 });
  });

  it('does not treat failed points or references as collapses, and orders worst first', () => {
    const flags = flagsFor(
      rec({ point: 'failed', status: 'failed', metrics: {} }),
      rec({ point: 'mild', metrics: scores(0.38, 0.85, 11) }),
      rec({ point: 'dead', metrics: scores(0, 0, 500, 0.9) }),
    );
    expect(flags.map((f) => f.point)).toEqual(['dead', 'mild']);
    expect(new Set(flags[0].violations.map((v) => v.rule))).toEqual(new Set(['below_parent_fraction', 'below_base', 'quality_vs_base', 'quality_rate']));
  });

  it('averages references evaluated more than once and ignores the lm suite as a skill', () => {
    const rs = [...refs(), rec({ point: 'p-math-2', role: 'parent', variant: 'math', metrics: scores(0.6, 0.3, 11) })];
    const r = references(rs);
    const metrics = listMetrics(rs);
    expect(r.bestParent(metrics.find((m) => m.key === 'math.exact_match_strict')!)?.value).toBeCloseTo(0.7);
    expect(metrics.filter((m) => m.role === 'skill').map((m) => m.key)).toEqual(['math.exact_match_strict', 'chat.prompt_level_strict']);
    // 0.34 < 0.5 x 0.7 = 0.35
    expect(checkPoint(rec({ point: 'm', metrics: scores(0.34, 0.85, 11) }), makeJudge(rs)).map((v) => v.rule)).toEqual(['below_parent_fraction']);
  });

  it('ignores bookkeeping counts an evaluator reports beside scores (math.n)', () => {
    const withN = (r: ReturnType<typeof rec>, n: number) => ({ ...r, metrics: { ...r.metrics, math: { ...r.metrics.math, n } } });
    const rs = [...refs().map((r) => withN(r, 100)), withN(rec({ point: 'good', metrics: scores(0.7, 0.8, 11) }), 4)];
    expect(listMetrics(rs).map((m) => m.key)).not.toContain('math.n');
    expect(detectCollapses(rs)).toEqual([]);
  });

  it('reads what a metric is from its declaration only: a metric not declared is neither judged nor listed', () => {
    const bare = (r: ReturnType<typeof rec>) => ({ ...r, metricSpecs: undefined });
    const rs = [...refs().map(bare), bare(rec({ point: 'dead', metrics: scores(0, 0, 500, 0.9) }))];
    expect(listMetrics(rs)).toEqual([]);
    expect(detectCollapses(rs)).toEqual([]);
  });
});

describe('collapse is claimed only beyond the noise', () => {
  // Every record scored on the same 40 items: math parent 32 right, base 2, chat parent 1.
  const base = () => [
    itemRec({ point: 'base', role: 'base', variant: 'base' }, { math: 2, chat: 4 }),
    itemRec({ point: 'p-math', role: 'parent', variant: 'math' }, { math: 32, chat: 2 }),
    itemRec({ point: 'p-chat', role: 'parent', variant: 'chat' }, { math: 1, chat: 30 }),
  ];

  it('flags a point just under half the parent as within noise, a point far under it as collapsed', () => {
    // limit 0.5 x 32/40 = 0.4: 15/40 = 0.375 is under it by one item; 3/40 by 13.
    const near = itemRec({ point: 'near' }, { math: 15, chat: 25 });
    const far = itemRec({ point: 'far' }, { math: 3, chat: 25 });
    const flags = detectCollapses([...base(), near, far]);
    const byPoint = new Map(flags.map((f) => [f.point, f]));
    expect(byPoint.get('far')!.collapsed).toBe(true);
    expect(byPoint.get('far')!.violations[0]).toMatchObject({ rule: 'below_parent_fraction', beyondNoise: true });
    expect(byPoint.get('far')!.violations[0].margin!.hi).toBeLessThan(0);
    expect(byPoint.get('near')!.collapsed).toBe(false);
    expect(byPoint.get('near')!.violations[0]).toMatchObject({ rule: 'below_parent_fraction', beyondNoise: false });
    const m = byPoint.get('near')!.violations[0].margin!;
    expect(m.lo).toBeLessThan(0);
    expect(m.hi).toBeGreaterThan(0);
    // collapsed points first
    expect(flags.map((f) => f.point)).toEqual(['far', 'near']);
  });

  it('calls a point without any noise model collapsed on its numbers alone', () => {
    const [f] = flagsFor(rec({ point: 'x', metrics: scores(0.1, 0.85, 11) }));
    expect(f.violations[0].beyondNoise).toBeUndefined();
    expect(f.collapsed).toBe(true);
  });
});
