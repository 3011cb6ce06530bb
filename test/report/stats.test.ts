import { describe, expect, it } from 'vitest';
import { betaDraw, normalQuantile, normalStream, percentileInterval, quantile, streamFor, verdict, wilson } from '../../src/report/stats.js';
import { Noise } from '../../src/report/noise.js';
import { listMetrics } from '../../src/report/metrics.js';
import { aggregate } from '../../src/results/metric.js';
import { itemRec, rec, refs, scores } from './helpers.js';

describe('Wilson score interval', () => {
  // Reference values: scipy.stats.binomtest(k, n).proportion_ci(0.95, method='wilson').
  it('matches known values at n = 40, k = 27', () => {
    const iv = wilson(27, 40);
    expect(iv.lo).toBeCloseTo(0.5201774618987767, 9);
    expect(iv.hi).toBeCloseTo(0.7991549776821729, 9);
  });

  it('is exactly 0 or 1 at the ends, and wider at a lower confidence level is never the case', () => {
    expect(wilson(0, 40)).toEqual({ lo: 0, hi: expect.closeTo(0.08762160119728662, 9) });
    expect(wilson(40, 40)).toEqual({ lo: expect.closeTo(0.9123783988027133, 9), hi: 1 });
    const w95 = wilson(27, 40), w80 = wilson(27, 40, 0.8);
    expect(w80.lo).toBeGreaterThan(w95.lo);
    expect(w80.hi).toBeLessThan(w95.hi);
  });

  it('refuses impossible counts', () => {
    expect(() => wilson(41, 40)).toThrow(RangeError);
    expect(() => wilson(1, 0)).toThrow(RangeError);
  });

  it('uses the normal quantile of the level', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 8);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 12);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306167813, 7);
  });
});

/** A percentile bootstrap of a statistic of per-item (value, weight) pairs, from a seeded stream. */
function bootstrap(values: number[], weights: number[], seed: number, B = 2000): { lo: number; hi: number } {
  const u = streamFor(seed, 'test');
  const reps = new Float64Array(B);
  const idx = new Uint32Array(values.length);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < idx.length; i++) idx[i] = Math.floor(u() * values.length);
    reps[b] = aggregate({ aggregation: 'exp_ratio' }, values, weights, idx);
  }
  return percentileInterval(reps);
}

describe('bootstrap over items', () => {
  const texts = (seed: number, n: number, ppl: number) => {
    const u = streamFor(seed, 'texts');
    const tokens = Array.from({ length: n }, () => 50 + Math.floor(100 * u()));
    // Per-text NLL varies around the corpus rate: item noise the interval has to cover.
    const nll = tokens.map((t) => t * Math.log(ppl) * (0.6 + 0.8 * u()));
    return { nll, tokens };
  };

  it('gives the same interval for the same seed and a different one for another seed', () => {
    const { nll, tokens } = texts(1, 40, 1.3);
    const a = bootstrap(nll, tokens, 7), b = bootstrap(nll, tokens, 7), c = bootstrap(nll, tokens, 8);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    // different draws, same noise: the two intervals agree to within a few percent of their width
    expect(Math.abs(c.hi - c.lo - (a.hi - a.lo))).toBeLessThan(0.1 * (a.hi - a.lo));
    const point = aggregate({ aggregation: 'exp_ratio' }, nll, tokens);
    expect(a.lo).toBeLessThan(point);
    expect(a.hi).toBeGreaterThan(point);
  });

  it('covers the true corpus perplexity in about 95% of samples', () => {
    // The population: 4,000 texts; each sample draws 40 of them; the truth is the population's perplexity.
    const pop = texts(3, 4000, 1.3);
    const truth = aggregate({ aggregation: 'exp_ratio' }, pop.nll, pop.tokens);
    const u = streamFor(11, 'samples');
    let covered = 0;
    const trials = 200;
    for (let t = 0; t < trials; t++) {
      const pick = Array.from({ length: 40 }, () => Math.floor(u() * pop.nll.length));
      const iv = bootstrap(pick.map((i) => pop.nll[i]), pick.map((i) => pop.tokens[i]), 100 + t, 1000);
      if (iv.lo <= truth && truth <= iv.hi) covered++;
    }
    // A percentile bootstrap at n = 40 runs a little under its nominal level.
    expect(covered / trials).toBeGreaterThan(0.88);
    expect(covered / trials).toBeLessThan(0.99);
  });

  it('draws Beta variates with the right mean and spread (Jeffreys draws for records without items)', () => {
    const u = streamFor(5, 'beta');
    const z = normalStream(u);
    const xs = Array.from({ length: 20000 }, () => betaDraw(27.5, 13.5, u, z));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean).toBeCloseTo(27.5 / 41, 2);
    // scipy.stats.beta.ppf([0.025, 0.975], 27.5, 13.5) = [0.52164, 0.80405]
    expect(quantile(xs, 0.025)).toBeCloseTo(0.52164, 2);
    expect(quantile(xs, 0.975)).toBeCloseTo(0.80405, 2);
  });
});

describe('the within-noise rule', () => {
  it('calls a difference better or worse only when its whole interval is on one side of zero', () => {
    expect(verdict({ lo: 0.01, hi: 0.2 })).toBe('better');
    expect(verdict({ lo: -0.2, hi: -0.01 })).toBe('worse');
    expect(verdict({ lo: -0.05, hi: 0.2 })).toBe('within noise');
    expect(verdict({ lo: 0, hi: 0.2 })).toBe('within noise');
  });

  it('turns around for a lower-is-better metric', () => {
    expect(verdict({ lo: 0.01, hi: 0.2 }, false)).toBe('worse');
    expect(verdict({ lo: -0.2, hi: -0.01 }, false)).toBe('better');
    expect(verdict({ lo: -0.2, hi: 0.01 }, false)).toBe('within noise');
  });

  it('pairs records scored on the same items: one item more is within noise, five more (and no fewer) beyond it, which unpaired intervals cannot tell', () => {
    // b gets items 0-15 right, a items 0-14: b is a plus one item; c is a plus five (items 15-19).
    const rs = [itemRec({ point: 'a' }, { math: 15 }), itemRec({ point: 'b' }, { math: 16 }), itemRec({ point: 'c' }, { math: 20 })];
    const noise = new Noise(rs, listMetrics(rs));
    expect(noise.suites()).toEqual([{ suite: 'math', paired: true, items: 40 }]);
    const m = listMetrics(rs)[0];
    const [a, b, c] = rs.map((r) => noise.record(r, m)!);
    const diff = (x: Float64Array, y: Float64Array) => noise.spread(x.map((v, i) => v - y[i]));
    // Paired: the difference is never negative, but a resample misses item 15 a third of the time.
    expect(diff(b, a).lo).toBe(0);
    expect(verdict(diff(b, a))).toBe('within noise');
    expect(verdict(diff(c, a))).toBe('better');
    // Unpaired (no items recorded): the same five-item difference is within noise.
    const bare = rs.map((r) => ({ ...r, items: undefined }));
    const un = new Noise(bare, listMetrics(bare));
    expect(un.suites()[0]).toMatchObject({ paired: false });
    const [ua, , uc] = bare.map((r) => un.record(r, m)!);
    expect(verdict(un.spread(uc.map((v, i) => v - ua[i])))).toBe('within noise');
  });

  it('has no interval for a metric with neither items nor an item count', () => {
    const rs = [...refs(), rec({ point: 'x', metrics: scores(0.5, 0.5, 11) })];
    const noise = new Noise(rs, listMetrics(rs));
    const ppl = listMetrics(rs).find((m) => m.key === 'lm.perplexity')!;
    expect(noise.record(rs[3], ppl)).toBeUndefined();
    expect(noise.interval([rs[3]], ppl, 'x')).toBeUndefined();
  });
});
