/** `--name VALUE` from a benchmark's command line. */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** `--name VALUE`, or `def` when it is not given. */
export function argOr(name: string, def: string): string {
  return arg(name) ?? def;
}

/** `--name N` as a number, or `def` when it is not given. */
export function numArg(name: string, def: number): number {
  const v = arg(name);
  return v === undefined ? def : Number(v);
}
