/**
 * One pure function per instruction id: (response, kwargs) -> followed?
 * Semantics follow IFEval's checkers where the id is IFEval's (noted per function); the
 * `mergelab:` ids are ours. Words are `\w+` runs, as IFEval counts them.
 */

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function wholeWordCount(text: string, word: string): number {
  const re = new RegExp(`(?<![A-Za-z0-9_])${escapeRegex(word)}(?![A-Za-z0-9_])`, 'gi');
  return (text.match(re) ?? []).length;
}

/** Python's str.isupper(): at least one cased character and none of them lower case. */
export function englishCapital(response: string): boolean {
  return /[A-Za-z]/.test(response) && !/[a-z]/.test(response);
}

/** Python's str.islower(): at least one cased character and none of them upper case. */
export function englishLowercase(response: string): boolean {
  return /[A-Za-z]/.test(response) && !/[A-Z]/.test(response);
}

/** IFEval: after trimming, longer than one char and both first and last are a double quote. */
export function quotation(response: string): boolean {
  const v = response.trim();
  return v.length > 1 && v.startsWith('"') && v.endsWith('"');
}

/** Ours: the whole (trimmed) response is wrapped in square brackets. */
export function brackets(response: string): boolean {
  const v = response.trim();
  return v.length > 1 && v.startsWith('[') && v.endsWith(']');
}

/** Strips every leading/trailing character in `chars`, like Python's str.strip(chars). */
function stripChars(s: string, chars: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && chars.includes(s[a])) a++;
  while (b > a && chars.includes(s[b - 1])) b--;
  return s.slice(a, b);
}

/** IFEval: trimmed, outer double quotes removed, lower-cased response ends with the phrase. */
export function endChecker(response: string, kw: { end_phrase: string }): boolean {
  const v = stripChars(response.trim(), '"').toLowerCase();
  return v.endsWith(kw.end_phrase.trim().toLowerCase());
}

/** IFEval: every keyword occurs somewhere, ignoring case (IFEval uses a substring search too). */
export function keywordsExistence(response: string, kw: { keywords: string[] }): boolean {
  return kw.keywords.every((k) => new RegExp(escapeRegex(k), 'i').test(response));
}

export function countWords(response: string): number {
  return (response.match(/\w+/g) ?? []).length;
}

/** IFEval: `less than` means count < num_words, `at least` means count >= num_words. */
export function numberWords(response: string, kw: { relation: 'less than' | 'at least'; num_words: number }): boolean {
  const n = countWords(response);
  return kw.relation === 'less than' ? n < kw.num_words : n >= kw.num_words;
}

/** Ours: the word appears exactly n times as a whole word, ignoring case. */
export function repeatWord(response: string, kw: { word: string; n: number }): boolean {
  return wholeWordCount(response, kw.word) === kw.n;
}

/** Ours: the word spelled backwards appears as a whole word, ignoring case. */
export function reverseWord(response: string, kw: { word: string }): boolean {
  return wholeWordCount(response, [...kw.word].reverse().join('')) > 0;
}
