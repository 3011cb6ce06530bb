/**
 * How far the fine-tunes moved from the base: per tensor ||ft - base|| / ||base||, summarised by
 * tensor kind, and the cosine between the two task vectors (math - base, chat - base). Real
 * supervised fine-tunes move weights by well under a few percent; merges only work when ours do too.
 */
import path from 'node:path';
import { parseTensorName } from '../checkpoint/names.js';
import { readZooArrays } from './io.js';
import { UserError } from '../util/errors.js';

export interface KindStats {
  kind: string;
  tensors: number;
  /** Median of ||delta|| / ||base|| over the tensors of this kind, per fine-tune. */
  medianRatio: Record<string, number>;
  /** Cosine between the two task vectors restricted to this kind. */
  cosine: number;
}

export interface DeltaStats {
  fineTunes: string[];
  /** Median over all tensors of ||delta|| / ||base||, per fine-tune. */
  medianRatio: Record<string, number>;
  /** ||delta|| / ||base|| over the whole model (all tensors concatenated), per fine-tune. */
  globalRatio: Record<string, number>;
  /** Cosine between the full task vectors. */
  cosine: number;
  byKind: KindStats[];
}


function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

export function deltaStats(base: Map<string, Float32Array>, fts: Record<string, Map<string, Float32Array>>): DeltaStats {
  const names = Object.keys(fts);
  if (names.length !== 2) throw new Error('deltaStats: expected exactly two fine-tunes');
  const [a, b] = names;
  const ratios: Record<string, Map<string, number>> = Object.fromEntries(names.map((n) => [n, new Map()]));
  const kindDot = new Map<string, { dot: number; na: number; nb: number; names: string[] }>();
  const glob: Record<string, { d: number; b: number }> = Object.fromEntries(names.map((n) => [n, { d: 0, b: 0 }]));
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [name, w] of base) {
    const wa = fts[a].get(name);
    const wb = fts[b].get(name);
    if (!wa || !wb) throw new UserError(`delta stats: tensor ${name} is missing from a fine-tune`, { field: name });
    let bb = 0;
    let da2 = 0;
    let db2 = 0;
    let dab = 0;
    for (let i = 0; i < w.length; i++) {
      const da = wa[i] - w[i];
      const db = wb[i] - w[i];
      bb += w[i] * w[i];
      da2 += da * da;
      db2 += db * db;
      dab += da * db;
    }
    ratios[a].set(name, Math.sqrt(da2 / bb));
    ratios[b].set(name, Math.sqrt(db2 / bb));
    glob[a].d += da2;
    glob[a].b += bb;
    glob[b].d += db2;
    glob[b].b += bb;
    dot += dab;
    na += da2;
    nb += db2;
    // `model.layers.3.self_attn.q_proj.weight` groups as `self_attn.q_proj`; top-level names stay whole.
    const k = parseTensorName(name).module;
    const e = kindDot.get(k) ?? { dot: 0, na: 0, nb: 0, names: [] };
    e.dot += dab;
    e.na += da2;
    e.nb += db2;
    e.names.push(name);
    kindDot.set(k, e);
  }
  const byKind: KindStats[] = [...kindDot].map(([kind, e]) => ({
    kind,
    tensors: e.names.length,
    medianRatio: Object.fromEntries(names.map((n) => [n, median(e.names.map((t) => ratios[n].get(t)!))])),
    cosine: e.dot / Math.sqrt(e.na * e.nb || 1),
  }));
  return {
    fineTunes: names,
    medianRatio: Object.fromEntries(names.map((n) => [n, median([...ratios[n].values()])])),
    globalRatio: Object.fromEntries(names.map((n) => [n, Math.sqrt(glob[n].d / glob[n].b)])),
    cosine: dot / Math.sqrt(na * nb || 1),
    byKind,
  };
}

export async function zooDeltaStats(dir: string): Promise<DeltaStats> {
  const base = await readZooArrays(path.join(dir, 'base'));
  const math = await readZooArrays(path.join(dir, 'math'));
  const chat = await readZooArrays(path.join(dir, 'chat'));
  return deltaStats(base.arrays, { math: math.arrays, chat: chat.arrays });
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

export function formatDeltaStats(s: DeltaStats): string {
  const [a, b] = s.fineTunes;
  const lines = [
    `| tensor kind | tensors | median ||d||/||w|| ${a} | median ||d||/||w|| ${b} | cosine(${a}, ${b}) |`,
    '|---|---:|---:|---:|---:|',
    ...s.byKind.map((k) => `| ${k.kind} | ${k.tensors} | ${pct(k.medianRatio[a])} | ${pct(k.medianRatio[b])} | ${k.cosine.toFixed(3)} |`),
    `| **all tensors (median)** | ${s.byKind.reduce((n, k) => n + k.tensors, 0)} | ${pct(s.medianRatio[a])} | ${pct(s.medianRatio[b])} | ${s.cosine.toFixed(3)} |`,
    '',
    `Whole-model ||delta||/||base||: ${a} ${pct(s.globalRatio[a])}, ${b} ${pct(s.globalRatio[b])}. Cosine between the task vectors: ${s.cosine.toFixed(4)}.`,
  ];
  return lines.join('\n') + '\n';
}
