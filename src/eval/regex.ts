/**
 * Task YAML regexes are written Python-style (lm-eval's): a leading inline flag group such as
 * `(?s)` or `(?i)` is turned into JS flags, since Node 20's RegExp does not accept it.
 */
export function compileRegex(source: string, extraFlags = ''): RegExp {
  let src = source;
  let flags = extraFlags;
  const m = /^\(\?([imsx]+)\)/.exec(src);
  if (m) {
    if (m[1].includes('x')) throw new SyntaxError(`verbose (?x) regexes are not supported: ${source}`);
    flags += m[1];
    src = src.slice(m[0].length);
  }
  return new RegExp(src, [...new Set(flags)].join(''));
}
