import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { REPO } from './helpers.js';

/**
 * The READMEs against the command line as it is: every `mergelab ...` they show must parse (a
 * concrete command line with the real parser, actions switched off; a synopsis such as
 * `mergelab run EXP.yaml [--dry-run] [--jobs N]` by its command and flags), and every file they
 * promise must be in the repository.
 */

const READMES = ['README.md', 'experiments/README.md', 'examples/recipes/README.md'];

/** Paths the READMEs name as things mergelab writes, not things the repository ships. */
const WRITTEN_BY_RUNS = [/^bench\/out\//, /^out\//, /^dist\//, /^\.cache\//, /^\/models\//, /^reports\/[^/]+\/(models|cache)\//];

/** Words that stand for a value the reader supplies. */
const PLACEHOLDER = /\b(NAME|EXP|DIR|PATH|FILE|POINT|PLAN|X|N|RECIPE|MODEL_DIR|COMMAND)\b|[*{<]/;

function markdownOf(file: string): string {
  return readFileSync(path.join(REPO, file), 'utf8');
}

/** Every `mergelab ...` in code blocks and inline code, as written (npx / npm run prefixes removed). */
export function commandLines(md: string): string[] {
  const out: string[] = [];
  const strip = (s: string) => s.replace(/\\\|/g, '|').replace(/^(npx |npm run )?mergelab( --)? /, 'mergelab ').trim();
  for (const block of md.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
    for (const line of block[1].split('\n')) if (/^(npx |npm run )?mergelab\b/.test(line.trim())) out.push(strip(line.trim()));
  }
  const prose = md.replace(/```[a-z]*\n[\s\S]*?```/g, '');
  for (const m of prose.matchAll(/`((?:npx |npm run )?mergelab (?:[^`\\]|\\.)+)`/g)) out.push(strip(m[1]));
  return out;
}

/** Shell-like words: whitespace separated, single and double quotes grouping. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

function allCommands(c: Command): Command[] {
  return [c, ...c.commands.flatMap(allCommands)];
}

/** The program with every action replaced by nothing and commander's own output silenced. */
function parseOnly(): Command {
  const program = buildProgram();
  for (const c of allCommands(program)) {
    c.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    if (c !== program && c.commands.length === 0) c.action(() => {});
  }
  return program;
}

/** The subcommand a synopsis names (`zoo train` -> the train command), and the words after it. */
function resolveCommand(program: Command, ws: string[]): { cmd: Command; rest: string[] } {
  let cmd = program;
  let i = 0;
  for (; i < ws.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === ws[i]);
    if (!sub) break;
    cmd = sub;
  }
  return { cmd, rest: ws.slice(i) };
}

const longFlags = (cmd: Command): string[] => (cmd.options as readonly Option[]).flatMap((o) => [o.long, o.negate ? o.long : undefined]).filter((x): x is string => !!x);

describe('the READMEs match the command line', () => {
  // `mergelab COMMAND --help` speaks of every command: it names none to check.
  const all = READMES.flatMap((f) => commandLines(markdownOf(f)).map((line) => ({ file: f, line }))).filter((c) => !/^mergelab [A-Z_]+\b/.test(c.line));

  it('finds the command lines (a README without any would make this test vacuous)', () => {
    for (const f of READMES) expect(all.filter((c) => c.file === f).length, f).toBeGreaterThan(0);
    expect(all.length).toBeGreaterThanOrEqual(15);
  });

  it('every concrete command line parses with the current CLI', async () => {
    const concrete = all.filter((c) => !/[[\]|]|\.\.\./.test(c.line));
    expect(concrete.length).toBeGreaterThanOrEqual(8);
    for (const { file, line } of concrete) {
      const program = parseOnly();
      const ws = words(line).slice(1);
      // Prose naming a command (`mergelab run`) rather than showing a command line: it must exist.
      if (resolveCommand(program, ws).rest.length === 0) {
        expect(resolveCommand(program, ws).cmd, `${file}: ${line}`).not.toBe(program);
        continue;
      }
      const err = await program.parseAsync(ws, { from: 'user' }).then(
        () => null,
        (e: Error) => e.message,
      );
      expect(err, `${file}: ${line}`).toBeNull();
      // And names a command, not only the program.
      expect(resolveCommand(program, ws).cmd, `${file}: ${line}`).not.toBe(program);
    }
  });

  it('every synopsis names an existing command and only its flags and choices', () => {
    const synopses = all.filter((c) => /[[\]|]|\.\.\./.test(c.line));
    expect(synopses.length).toBeGreaterThanOrEqual(5);
    const program = buildProgram();
    for (const { file, line } of synopses) {
      // `mergelab zoo train [...]`, `mergelab zoo stats`: a cell may hold several, joined by commas.
      for (const part of line.split(/`?, `?(?=mergelab )/)) {
        const ws = words(part.replace(/[[\]]/g, ' ')).slice(1);
        const { cmd, rest } = resolveCommand(program, ws);
        expect(cmd, `${file}: ${part}`).not.toBe(program);
        const flags = longFlags(cmd);
        for (let i = 0; i < rest.length; i++) {
          const w = rest[i];
          if (!w.startsWith('--')) continue;
          expect(flags, `${file}: ${part}: ${w}`).toContain(w.split('=')[0]);
          const opt = (cmd.options as readonly Option[]).find((o) => o.long === w);
          // `--plan copy|full|words`: each listed choice is one the option accepts.
          if (opt?.argChoices && rest[i + 1]) for (const choice of rest[i + 1].split('|')) expect(opt.argChoices, `${file}: ${part}`).toContain(choice);
        }
      }
    }
  });

  it('every file a README points to is in the repository, and nothing points outside it', () => {
    const missing: string[] = [];
    const outside: string[] = [];
    for (const file of READMES) {
      const md = markdownOf(file);
      const dir = path.dirname(path.join(REPO, file));
      const targets: string[] = [];
      for (const m of md.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) if (!/^[a-z]+:/.test(m[1])) targets.push(m[1]);
      const prose = md.replace(/```[a-z]*\n[\s\S]*?```/g, '');
      for (const m of prose.matchAll(/`([^`\s]+)`/g)) {
        const t = m[1].replace(/[:,]$/, '');
        // A path (it has a folder), or a file named in a table's first column.
        if (/\//.test(t) && /^(\.\.\/|[a-z.])/.test(t) && !/^[a-z]+:/.test(t) && !/^@/.test(t)) targets.push(t);
      }
      for (const m of md.matchAll(/^\| `([^`/]+\.(?:yaml|ts|md))` \|/gm)) targets.push(m[1]);
      for (const t of targets) {
        if (PLACEHOLDER.test(t) || WRITTEN_BY_RUNS.some((re) => re.test(t))) continue;
        const candidates = [path.resolve(dir, t), path.resolve(REPO, t)];
        if (candidates.every((c) => !c.startsWith(REPO + path.sep) && c !== REPO)) outside.push(`${file}: ${t}`);
        else if (!candidates.some((c) => c.startsWith(REPO) && existsSync(c))) missing.push(`${file}: ${t}`);
      }
    }
    expect(outside).toEqual([]);
    expect(missing).toEqual([]);
  });
});
