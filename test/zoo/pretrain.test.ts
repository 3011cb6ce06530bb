import { describe, expect, it } from 'vitest';
import { pretrainDocuments, pretrainDocument, allFacts } from '../../src/data/pretrain.js';
import { rng } from '../../src/data/split.js';
import { ADD_MAX, MUL_MAX, SUB_MAX, WORDS } from '../../src/data/lexicon.js';
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

  it('tells requests with two conditions whose replies meet every condition', () => {
    const r = rng(11);
    const seen = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const d = pretrainDocument(r, { facts: 0, stories: 0, words: 0, prose: 0, composed: 1 });
      expect(d).not.toMatch(/####|Question:|Answer:|<\|/);
      const m = /^(.*)\. \w+ wrote: (.+)$/.exec(d);
      expect(m, d).not.toBeNull();
      const [ask, reply] = [m![1], m![2]];
      const bare = reply.replace(/^["[]|["\]]$/g, '');
      const words = bare.toLowerCase().split(' ');
      const cond = (re: RegExp) => re.exec(ask);
      let c: RegExpExecArray | null;
      if ((c = cond(/(?:with (\w+) as the last word|ending on the word (\w+)|the last word had to be (\w+)|so that (\w+) came last)/))) {
        expect(words[words.length - 1], d).toBe(c[1] ?? c[2] ?? c[3] ?? c[4]);
        seen.add('end');
      }
      if ((c = cond(/(?:with the word (\w+) in it too|and also the word (\w+)|with (\w+) somewhere in it|and (\w+) had to appear in it)/))) {
        expect(words, d).toContain(c[1] ?? c[2] ?? c[3] ?? c[4]);
        seen.add('keyword');
      }
      if ((c = cond(/(?:in fewer than|shorter than) (\d) words/))) expect(words.length, d).toBeLessThan(Number(c[1]));
      if ((c = cond(/(?:at least|no fewer than) (\d) words/))) expect(words.length, d).toBeGreaterThanOrEqual(Number(c[1]));
      if (/capital letters/.test(ask)) expect(reply, d).toBe(reply.toUpperCase());
      if (/lowercase/.test(ask)) expect(reply, d).toBe(reply.toLowerCase());
      if (/double quotes/.test(ask)) expect(reply, d).toMatch(/^".+"$/);
      if (/square brackets/.test(ask)) expect(reply, d).toMatch(/^\[.+\]$/);
    }
    expect([...seen].sort()).toEqual(['end', 'keyword']);
  });

  it('repeats made-up words exactly where a document says it copies them', () => {
    const r = rng(12);
    const lexicon = new Set<string>(WORDS);
    const hits = { again: 0, back: 0, swap: 0, sign: 0, madeUp: 0 };
    for (let i = 0; i < 400; i++) {
      const d = pretrainDocument(r, { facts: 0, stories: 0, words: 0, prose: 0, copy: 1 });
      const again = /^The new word was (\w+)\. \w+ said it again: (\w+)\.$/.exec(d);
      if (again) {
        expect(again[2]).toBe(again[1]);
        hits.again++;
        if (!lexicon.has(again[1])) hits.madeUp++;
      }
      const back = /^\w+ heard (.+), and said back (.+)\.$/.exec(d);
      if (back) (expect(back[2]).toBe(back[1]), hits.back++);
      const swap = /^\w+ swapped (\w+) and (\w+) and got (\w+) (\w+)\.$/.exec(d);
      if (swap) (expect([swap[3], swap[4]]).toEqual([swap[2], swap[1]]), hits.swap++);
      const sign = /^A sign said (\w+)\. In small letters that is (\w+)\.$/.exec(d);
      if (sign) (expect(sign[1].toLowerCase()).toBe(sign[2]), hits.sign++);
    }
    for (const [k, n] of Object.entries(hits)) expect(n, k).toBeGreaterThan(5);
  });

  it('lists every fact of the ranges once', () => {
    const f = allFacts();
    expect(new Set(f).size).toBe(f.length);
    expect(f.length).toBe((ADD_MAX + 1) ** 2 + ((SUB_MAX + 1) * (SUB_MAX + 2)) / 2 + (MUL_MAX - 1) ** 2);
  });
});
