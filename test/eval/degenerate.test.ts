import { describe, expect, it } from 'vitest';
import { isDegenerate, trailingLoop } from '../../src/eval/degenerate.js';

describe('degenerate outputs', () => {
  it('empty or whitespace-only is degenerate', () => {
    expect(isDegenerate('', false)).toBe(true);
    expect(isDegenerate(' \n ', undefined)).toBe(true);
  });
  it('one character repeated to the limit', () => {
    expect(isDegenerate('a'.repeat(48), true)).toBe(true);
    expect(isDegenerate('\n'.repeat(48), true)).toBe(true);
  });
  it('a short n-gram looping to the limit, even after a sane start', () => {
    expect(isDegenerate('Tom has 5 + 7 = 1212121212121212121212121212', true)).toBe(true);
    expect(isDegenerate('cat cat cat cat cat cat cat cat cat cat cat cat', true)).toBe(true);
    expect(trailingLoop('xy the end the end the end the end')).toEqual({ period: 8, span: 32 });
  });
  it('a proper answer, or one that stopped at <eos>, is not degenerate', () => {
    expect(isDegenerate('Tom has 5 + 7 = 12 apples.\n#### 12', true)).toBe(false);
    expect(isDegenerate('cat cat cat cat cat cat cat cat', false)).toBe(false);
    expect(isDegenerate('[TAC]', undefined)).toBe(false);
  });
  it('a loop covering only the tail of a long output is not enough', () => {
    expect(isDegenerate('Tom has 5 + 7 = 12 apples. Tom has 12 - 4 = 8 apples. !!!', true)).toBe(false);
  });
});
