import { describe, expect, it } from 'vitest';
import { pretrainDocuments, pretrainDocument, allFacts } from '../../src/data/pretrain.js';
import { rng } from '../../src/data/split.js';
import { ADD_MAX, MUL_MAX, SUB_MAX } from '../../src/data/lexicon.js';
import { tupleKey, type MathOp } from '../../src/data/math.js';
import { splitOf } from '../../src/data/split.js';

describe('pretraining corpus', () => {
  const docs = pretrainDocuments('train', 3000, 1);

  it('is deterministic in the seed and differs between seeds and splits', () => {
    expect(pretrainDocuments('train', 50, 1)).toEqual(docs.slice(0, 50));
    expect(pretrainDocuments('train', 50, 2)).not.toEqual(docs.slice(0, 50));
    expect(pretrainDocuments('heldout', 50, 1)).not.toEqual(docs.slice(0, 50));
  });

  it('never carries the task formats', () => {
    for (const d of docs) expect(d).not.toMatch(/####|Question:|Answer:|<\|user\|>|<\|assistant\|>|<bos>|<eos>/);
  });

  it('states only true equations, inside the lexicon ranges', () => {
    let n = 0;
    for (const d of docs) {
      for (const m of d.matchAll(/(\d+) ([-+*x]) (\d+) = (\d+)/g)) {
        const [a, b, c] = [Number(m[1]), Number(m[3]), Number(m[4])];
        const op = m[2];
        const want = op === '+' ? a + b : op === '-' ? a - b : a * b;
        expect(c, m[0]).toBe(want);
        if (op === '+') expect(Math.max(a, b)).toBeLessThanOrEqual(ADD_MAX);
        if (op === '-') expect(a).toBeLessThanOrEqual(SUB_MAX);
        if (op === '*' || op === 'x') expect(Math.max(a, b)).toBeLessThanOrEqual(MUL_MAX);
        n++;
      }
    }
    expect(n).toBeGreaterThan(3000);
  });

  it('teaches word reversals, capitals and repetitions', () => {
    const text = docs.join('\n');
    expect(text).toMatch(/(\w+) spelled backwards is (\w+)\./);
    for (const m of text.matchAll(/The word (\w+) backwards is (\w+)\./g)) expect([...m[1]].reverse().join('')).toBe(m[2]);
    for (const m of text.matchAll(/(\w+) in capital letters is (\w+)\./g)) expect(m[1].toUpperCase()).toBe(m[2]);
  });

  it('tells stories only with number chains of the train split (no eval item leaks)', () => {
    let stories = 0;
    for (const d of docs) {
      if (!/ had \d+ [-+*] \d+ = /.test(d)) continue;
      const steps = [...d.matchAll(/(\d+) ([-+*]) (\d+) = (\d+)/g)].map((m) => ({
        op: (m[2] === '+' ? 'add' : m[2] === '-' ? 'sub' : 'mul') as MathOp,
        left: Number(m[1]),
        right: Number(m[3]),
        result: Number(m[4]),
      }));
      for (let i = 1; i < steps.length; i++) expect(steps[i].left).toBe(steps[i - 1].result);
      expect(splitOf(tupleKey(steps))).toBe('train');
      stories++;
    }
    expect(stories).toBeGreaterThan(300);
  });

  it('tells requests with replies that fulfil them, and works stories one equation per line', () => {
    const r = rng(9);
    for (let i = 0; i < 400; i++) {
      const d = pretrainDocument(r, { facts: 0, stories: 0, words: 0, prose: 0, requests: 1, worked: 1 });
      expect(d).not.toMatch(/####|Question:|Answer:|<\|/);
      const back = /wanted (\w+) backwards\. \w+ wrote: (\w+)$/.exec(d);
      if (back) expect(back[2]).toBe([...back[1]].reverse().join(''));
      const rep = /wanted (\w+) (\d) times\. \w+ wrote: (.+)$/.exec(d);
      if (rep) expect(rep[3]).toBe(Array(Number(rep[2])).fill(rep[1]).join(' '));
      if (d.includes('\n')) {
        const lines = d.split('\n');
        for (const l of lines.slice(1, -1)) expect(l).toMatch(/^\w+ has \d+ [-+*] \d+ = \d+ \w+\.$/);
        expect(lines[lines.length - 1]).toMatch(/^In the end \w+ has \d+ \w+\.$/);
      }
    }
  });

  it('lists every fact of the ranges once', () => {
    const f = allFacts();
    expect(new Set(f).size).toBe(f.length);
    expect(f.length).toBe((ADD_MAX + 1) ** 2 + ((SUB_MAX + 1) * (SUB_MAX + 2)) / 2 + (MUL_MAX - 1) ** 2);
  });
});
