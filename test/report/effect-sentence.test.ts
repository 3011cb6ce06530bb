/**
 * Effect sentences claim only what they can print: a change shown as zero is not "worse beyond
 * noise", however tight its paired interval.
 */
import { describe, expect, it } from 'vitest';
import { effectSentence, judge, type FactorEffect } from '../../src/report/explain.js';
import type { Factor } from '../../src/report/factors.js';
import type { MetricInfo } from '../../src/report/metrics.js';

const ppl: MetricInfo = { key: 'lm.perplexity', suite: 'lm', metric: 'perplexity', role: 'quality', higherIsBetter: false, aggregation: 'exp_ratio', unit: 'perplexity', headline: true, decimals: 3 };

function factor(name: string, levels: string[]): Factor {
  return { name, axes: [name], numeric: false, levels, levelOf: () => levels[0] };
}

function effect(name: string, levels: string[], changes: number[]): FactorEffect {
  const [best, ...rest] = levels;
  return {
    factor: factor(name, levels),
    metric: ppl,
    best,
    range: Math.max(...changes.map(Math.abs)),
    balanced: true,
    levels: [
      { level: best, points: 6, score: { value: 1.3 } },
      // Every other level: an interval that excludes zero (tight, as pairing on the same items makes it), judged as the report does.
      ...rest.map((level, i) => {
        const interval = { lo: changes[i] * 0.8, hi: changes[i] * 1.2 };
        return { level, points: 6, score: { value: 1.3 + changes[i] }, change: { value: changes[i], interval, verdict: judge(ppl, changes[i], interval) } };
      }),
    ],
  };
}

describe('effect sentences', () => {
  it('name a change that prints as zero as below the printed precision, not as worse beyond noise', () => {
    const s = effectSentence('chained', 12, [effect('density', ['1', '0.1'], [0.013]), effect('rescale', ['l1', 'inverse_density'], [0.0002])]);
    expect(s).toBe("In 'chained' (12 points), lm.perplexity depends most on density: 1.300 at 1 against 1.313 at 0.1 (+0.013 [0.010, 0.016]; 1 of 1 other level worse beyond noise). Within noise: rescale (largest gap 0.000, below the printed precision).");
  });

  it('a factor whose only changes print as zero moves only within the noise', () => {
    const s = effectSentence('ties', 4, [effect('rescale', ['l1', 'inverse_density'], [0.0002])]);
    expect(s).toBe("In 'ties' (4 points), lm.perplexity moves only within the noise of every factor.");
  });

  it('the verdict on a change: within noise when it prints as zero, else what its interval says', () => {
    expect(judge(ppl, 0.0002, { lo: 0.0001, hi: 0.0003 })).toBe('within noise');
    expect(judge(ppl, 0.013, { lo: 0.01, hi: 0.016 })).toBe('worse');
    expect(judge(ppl, -0.013, { lo: -0.016, hi: -0.01 })).toBe('better');
    expect(judge(ppl, 0.013, { lo: -0.001, hi: 0.02 })).toBe('within noise');
    expect(judge(ppl, 0.013, undefined)).toBeUndefined();
  });
});
