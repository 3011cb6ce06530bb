import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML, { LineCounter, type Document } from 'yaml';
import { UserError, formatPos, problemsError, type Problem, type SourcePos } from '../util/errors.js';

/** A path into a YAML document, as zod reports it: keys and sequence indices. */
export type FieldPath = ReadonlyArray<string | number>;

/** `models[1].parameters.weight` */
export function formatField(p: FieldPath): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : out === '' ? k : `.${k}`;
  return out || '(document)';
}

/**
 * One `---` document of a recipe file, kept with its source so that any later error can point at
 * `file:line:column` of the field it is about, even after the values were validated and resolved.
 */
export class RecipeDocument {
  constructor(
    readonly file: string,
    /** 0-based position among the non-empty documents of the file. */
    readonly index: number,
    readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
    /** This document's own YAML text (what the stage's output stores as mergekit_config.yml). */
    readonly text: string,
  ) {}

  get value(): unknown {
    return this.doc.toJS({ maxAliasCount: 1000 });
  }

  /** Position of the node at `p`, or of its nearest existing ancestor (a missing key points at its parent); with `atKey`, of the key. */
  pos(p: FieldPath = [], atKey = false): SourcePos {
    if (atKey && p.length && typeof p[p.length - 1] === 'string') {
      const parent = p.length === 1 ? this.doc.contents : this.doc.getIn(p.slice(0, -1), true);
      const items = (parent as { items?: Array<{ key?: { value?: unknown; range?: [number, number, number] } }> } | null)?.items;
      const pair = items?.find((it) => it.key?.value === p[p.length - 1]);
      if (pair?.key?.range) return { file: this.file, ...this.lines.linePos(pair.key.range[0]) };
    }
    for (let n = p.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : (this.doc.getIn(p.slice(0, n), true) as { range?: [number, number, number] } | undefined);
      const range = node && typeof node === 'object' ? (node as { range?: [number, number, number] }).range : undefined;
      if (range) return { file: this.file, ...this.lines.linePos(range[0]) };
    }
    return { file: this.file };
  }

  /** `file:line:col` of `pos(p, atKey)`, for warnings. */
  where(p: FieldPath = [], atKey = false): string {
    return formatPos(this.pos(p, atKey));
  }

  /** A problem about field `p` of this document: rendered `file:line:col: stage N, field models[1].parameters.weight: ...`. */
  problem(p: FieldPath, what: string, stageLabel?: string, atKey = false, suggestion?: string): Problem {
    return { ...this.pos(p, atKey), context: stageLabel || undefined, field: p.length ? formatField(p) : undefined, message: what, ...(suggestion !== undefined ? { suggestion } : {}) };
  }
}

export interface ParsedFile {
  file: string;
  /** Folder that relative model paths in the recipe are resolved against. */
  dir: string;
  docs: RecipeDocument[];
}

/**
 * Split a recipe into its YAML documents. Syntax errors are all collected and reported with line
 * and column; empty documents (a trailing `---`, a file of comments) are dropped.
 */
export function parseRecipeText(text: string, file = '<recipe>', dir = process.cwd()): ParsedFile {
  const lines = new LineCounter();
  const parsed = YAML.parseAllDocuments(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const all = Array.isArray(parsed) ? parsed : [parsed];
  const problems: Problem[] = [];
  for (const d of all) {
    for (const e of d.errors) {
      const pos = e.linePos?.[0];
      // yaml appends " at line L, column C:" and a code excerpt; we give the position ourselves.
      const first = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      const hint = e.code === 'DUPLICATE_KEY' ? ' (several stages in one file must be separated by a line `---`)' : '';
      problems.push({ file, ...(pos ? { line: pos.line, col: pos.col } : {}), message: `YAML syntax error: ${first}${hint}` });
    }
  }
  if (problems.length) throw problemsError(problems, file);
  const docs: RecipeDocument[] = [];
  for (const d of all) {
    if (d.contents === null || d.contents === undefined) continue;
    const [start, , end] = d.contents.range ?? [0, 0, text.length];
    docs.push(new RecipeDocument(file, docs.length, d, lines, text.slice(start, end).trimEnd() + '\n'));
  }
  if (docs.length === 0) throw problemsError([{ file, message: 'the recipe is empty (expected a YAML mapping with merge_method and models or slices)' }], file);
  return { file, dir, docs };
}

export async function readRecipeFile(file: string): Promise<ParsedFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new UserError({ file, message: `cannot read the recipe: ${(e as Error).message}` }, { file, cause: e });
  }
  return parseRecipeText(text, file, path.dirname(path.resolve(file)));
}
