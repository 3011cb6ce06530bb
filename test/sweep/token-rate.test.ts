import { describe, expect, it } from 'vitest';
import { TokenRate, fmtRate } from '../../src/sweep/progress.js';

describe('tokens per second in the sweep progress', () => {
  it('is the rate over the recent window, not since the start', () => {
    let t = 0;
    const r = new TokenRate(10_000, () => t);
    expect(r.rate(0)).toBeNull();
    t = 1000;
    expect(r.rate(500)).toBe(500);
    t = 30_000; // idle stretch, then a fast one
    r.rate(500);
    t = 32_000;
    expect(r.rate(20_500)).toBe(10_000);
    expect(fmtRate(10_000)).toBe('10.0k tok/s');
    expect(fmtRate(420)).toBe('420 tok/s');
    expect(fmtRate(null)).toBe('? tok/s');
  });
});
