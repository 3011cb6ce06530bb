import { describe, expect, it } from 'vitest';
import * as c from '../../src/ifeval/checkers.js';
import { checkAll, checkAllLoose, INSTRUCTION_IDS, kwargsProblem, looseVariants } from '../../src/ifeval/registry.js';
import { ifevalAggregate, ifevalVerdict } from '../../src/eval/metrics.js';

describe('checkers', () => {
  it('english_capital: all cased letters upper, at least one', () => {
    expect(c.englishCapital('CAT DOG')).toBe(true);
    expect(c.englishCapital('"TAC" 3')).toBe(true);
    expect(c.englishCapital('CAt')).toBe(false);
    expect(c.englishCapital('123 !')).toBe(false);
  });
  it('english_lowercase: all cased letters lower, at least one', () => {
    expect(c.englishLowercase('cat dog')).toBe(true);
    expect(c.englishLowercase('Cat')).toBe(false);
    expect(c.englishLowercase('  ')).toBe(false);
  });
  it('quotation: trimmed response starts and ends with a double quote', () => {
    expect(c.quotation(' "cat" ')).toBe(true);
    expect(c.quotation('"cat')).toBe(false);
    expect(c.quotation('"')).toBe(false);
    expect(c.quotation("'cat'")).toBe(false);
  });
  it('brackets: trimmed response is wrapped in square brackets', () => {
    expect(c.brackets('[cat dog]')).toBe(true);
    expect(c.brackets('[cat] dog')).toBe(false);
    expect(c.brackets('(cat)')).toBe(false);
  });
  it('end_checker: ends with the phrase, ignoring case, outer double quotes and spaces', () => {
    expect(c.endChecker('cat moon', { end_phrase: 'moon' })).toBe(true);
    expect(c.endChecker('"CAT MOON"  ', { end_phrase: 'moon' })).toBe(true);
    expect(c.endChecker('[cat moon]', { end_phrase: 'moon' })).toBe(false);
    expect(c.endChecker('moon cat', { end_phrase: 'moon' })).toBe(false);
  });
  it('keywords:existence: every keyword occurs, ignoring case', () => {
    expect(c.keywordsExistence('cat DOG', { keywords: ['dog'] })).toBe(true);
    expect(c.keywordsExistence('cat dog', { keywords: ['dog', 'sun'] })).toBe(false);
    expect(c.keywordsExistence('cat', { keywords: ['c.t'] })).toBe(false); // keywords are literal, not regexes
  });
  it('number_words: less than / at least over \\w+ words', () => {
    expect(c.numberWords('cat dog', { relation: 'less than', num_words: 3 })).toBe(true);
    expect(c.numberWords('cat dog sun', { relation: 'less than', num_words: 3 })).toBe(false);
    expect(c.numberWords('cat, dog; sun', { relation: 'at least', num_words: 3 })).toBe(true);
    expect(c.numberWords('cat-dog', { relation: 'at least', num_words: 3 })).toBe(false);
  });
  it('repeat_word: whole word exactly n times, ignoring case', () => {
    expect(c.repeatWord('cat CAT cat', { word: 'cat', n: 3 })).toBe(true);
    expect(c.repeatWord('cat cat', { word: 'cat', n: 3 })).toBe(false);
    expect(c.repeatWord('cat cat cat cat', { word: 'cat', n: 3 })).toBe(false);
    expect(c.repeatWord('cats cat cat', { word: 'cat', n: 3 })).toBe(false);
  });
  it('reverse_word: the reversed word appears as a whole word, ignoring case', () => {
    expect(c.reverseWord('tac', { word: 'cat' })).toBe(true);
    expect(c.reverseWord('[TAC]', { word: 'cat' })).toBe(true);
    expect(c.reverseWord('cat', { word: 'cat' })).toBe(false);
    expect(c.reverseWord('tacos', { word: 'cat' })).toBe(false);
  });
});

describe('registry', () => {
  it('has exactly the contract instruction set', () => {
    expect([...INSTRUCTION_IDS].sort()).toEqual([
      'change_case:english_capital', 'change_case:english_lowercase', 'keywords:existence', 'length_constraints:number_words',
      'mergelab:brackets', 'mergelab:repeat_word', 'mergelab:reverse_word', 'startend:end_checker', 'startend:quotation',
    ]);
  });
  it('names unknown ids and bad kwargs', () => {
    expect(kwargsProblem('detectable_format:title', {})).toMatch(/unknown instruction id "detectable_format:title"/);
    expect(kwargsProblem('mergelab:repeat_word', { word: 'cat' })).toMatch(/kwargs for mergelab:repeat_word: n:/);
    expect(kwargsProblem('length_constraints:number_words', { relation: 'more than', num_words: 2 })).toMatch(/relation/);
    // IFEval drops null-valued kwargs
    expect(kwargsProblem('startend:quotation', { end_phrase: null })).toBeNull();
  });
  it('strict fails a blank response even when a check would pass it', () => {
    expect(checkAll('   ', ['length_constraints:number_words'], [{ relation: 'less than', num_words: 3 }])).toEqual([false]);
  });
});

describe('strict vs loose', () => {
  it('loose variants are the 8 IFEval ones', () => {
    const v = looseVariants('Sure!\n**TAC**\nBye');
    expect(v).toEqual(['Sure!\n**TAC**\nBye', 'Sure!\nTAC\nBye', '**TAC**\nBye', 'Sure!\n**TAC**', '**TAC**', 'TAC\nBye', 'Sure!\nTAC', 'TAC']);
  });
  it('a chatty, markdown-wrapped response passes loose but not strict', () => {
    const ids = ['mergelab:brackets', 'change_case:english_capital'];
    const kw = [{}, {}];
    const response = 'Here it is:\n**[TAC]**';
    expect(checkAll(response, ids, kw)).toEqual([false, false]);
    expect(checkAllLoose(response, ids, kw)).toEqual([true, true]);
    const agg = ifevalAggregate([ifevalVerdict(response, ids, kw), ifevalVerdict('[TAC]', ids, kw), ifevalVerdict('[tac]', ids, kw)]);
    expect(agg.prompt_level_strict).toBeCloseTo(1 / 3);
    expect(agg.prompt_level_loose).toBeCloseTo(2 / 3);
    expect(agg.inst_level_strict).toBeCloseTo(3 / 6);
    expect(agg.inst_level_loose).toBeCloseTo(5 / 6);
  });
  it('loose never accepts an all-blank variant', () => {
    expect(checkAllLoose('\n', ['length_constraints:number_words'], [{ relation: 'less than', num_words: 1 }])).toEqual([false]);
  });
});
