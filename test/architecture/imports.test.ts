/**
 * The folders of src/ import each other in one direction only: no folder reaches itself again
 * through its imports (static, type-only and dynamic `import()` alike), and no file does either.
 * Imports are read with TypeScript's own pre-processor, so the rule holds for what the compiler sees.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** file -> files it imports, with the line of each import for messages. */
function importGraph(): Map<string, Array<{ to: string; line: string }>> {
  const files = sourceFiles(SRC);
  const known = new Set(files);
  const graph = new Map<string, Array<{ to: string; line: string }>>();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const edges: Array<{ to: string; line: string }> = [];
    for (const ref of ts.preProcessFile(text, true, true).importedFiles) {
      if (!ref.fileName.startsWith('.')) continue;
      const to = path.resolve(path.dirname(f), ref.fileName).replace(/\.js$/, '.ts');
      if (!known.has(to)) continue;
      const lineNo = text.slice(0, ref.pos).split('\n').length;
      edges.push({ to, line: `${path.relative(SRC, f)}:${lineNo} imports ${ref.fileName}` });
    }
    graph.set(f, edges);
  }
  return graph;
}

/** Strongly connected components with more than one node, or a node importing itself (Tarjan). */
function cycles<T>(nodes: T[], next: (n: T) => T[]): T[][] {
  let counter = 0;
  const index = new Map<T, number>();
  const low = new Map<T, number>();
  const stack: T[] = [];
  const on = new Set<T>();
  const out: T[][] = [];
  const visit = (v: T) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    on.add(v);
    for (const w of next(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: T[] = [];
      let w: T;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || next(v).includes(v)) out.push(comp);
    }
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return out;
}

const folderOf = (file: string) => path.relative(SRC, file).split(path.sep)[0];

describe('imports between the folders of src/', () => {
  const graph = importGraph();

  it('form no cycle between folders', () => {
    const folders = [...new Set([...graph.keys()].map(folderOf))];
    const between = (a: string) => [...graph.entries()].filter(([f]) => folderOf(f) === a).flatMap(([, es]) => es).filter((e) => folderOf(e.to) !== a);
    const found = cycles(folders, (a) => [...new Set(between(a).map((e) => folderOf(e.to)))]);
    // Each cycle is reported with the imports that close it, so the message says what to move.
    const explain = found.map((c) => `${c.join(' <-> ')}:\n  ${c.flatMap((a) => between(a).filter((e) => c.includes(folderOf(e.to))).map((e) => e.line)).join('\n  ')}`);
    expect(explain).toEqual([]);
  });

  it('form no cycle between files', () => {
    const found = cycles([...graph.keys()], (f) => graph.get(f)!.map((e) => e.to));
    expect(found.map((c) => c.map((f) => path.relative(SRC, f)))).toEqual([]);
  });
});
