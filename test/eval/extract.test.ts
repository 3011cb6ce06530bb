import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { applyFilter, regexExtract } from '../../src/eval/filters.js';
import { exactMatch } from '../../src/eval/metrics.js';
import { parseTaskSpec, type GenerateTaskSpec } from '../../src/eval/task.js';

const yamlPath = path.resolve(__dirname, '../../evals/math.yaml');
const spec = parseTaskSpec(readFileSync(yamlPath, 'utf8'), yamlPath) as GenerateTaskSpec;
const strict = spec.filters.find((f) => f.name === 'strict')!;
const flexible = spec.filters.find((f) => f.name === 'flexible')!;
const em = spec.metrics[0];
const reference = 'Tom has 5 + 7 = 12 apples.\n#### 12';
const score = (output: string, filter = strict, ref = reference) => exactMatch(applyFilter(output, filter), ref, em);

describe('math answer extraction (lm-eval gsm8k filters)', () => {
  it('strict takes the number after "#### "', () => {
    expect(applyFilter(' Tom has 5 + 7 = 12 apples.\n#### 12', strict)).toBe('12');
    expect(applyFilter('#### 1,234', strict)).toBe('1,234');
    expect(applyFilter('#### -7', strict)).toBe('-7');
    expect(applyFilter('the answer is 12', strict)).toBe('[invalid]');
    // the first "#### " wins
    expect(applyFilter('#### 3\n#### 12', strict)).toBe('3');
  });
  it('flexible takes the last number anywhere', () => {
    expect(applyFilter('5 + 7 = 12 apples, so 12.', flexible)).toBe('12.');
    expect(applyFilter('He pays $1,200 in total', flexible)).toBe('$1,200');
    expect(applyFilter('from 9 down to -3', flexible)).toBe('-3');
    expect(applyFilter('no digits', flexible)).toBe('[invalid]');
  });
  it('exact match ignores commas, $, the worked steps of the target and a final period', () => {
    expect(score(' Tom has 5 + 7 = 12 apples.\n#### 12')).toBe(true);
    expect(score('#### 13')).toBe(false);
    expect(score('so it is 12.', flexible)).toBe(true);
    expect(score('Tom has 5 + 7 = 12 apples. So 12 apples.', strict)).toBe(false);
    expect(score('#### 1,200', strict, '#### 1200')).toBe(true);
    expect(score('costs $1,200', flexible, 'x\n#### 1200')).toBe(true);
    expect(score('#### -4', strict, 'x\n#### -4')).toBe(true);
    expect(score('#### 4', strict, 'x\n#### -4')).toBe(false);
  });
  it('group_select and fallback follow Python findall semantics', () => {
    expect(regexExtract('a1 b2 c3', '([a-z])(\\d)', 0)).toBe('a');
    expect(regexExtract('a1 b2 c3', '[a-z]\\d', -1)).toBe('c3');
    expect(regexExtract('x', '(\\d)', 0, 'none')).toBe('none');
  });
});
