import { z } from 'zod';
import type { StageDiagnostics } from '../merge/diagnostics.js';
import type { StandoutThresholds } from './options.js';
import { DEFAULT_STANDOUTS } from './options.js';
import { fmt } from './metrics.js';
import { parseTensorName, type TensorKind } from '../checkpoint/names.js';

/*
 * Records carry `diagnostics: any[]`: per-stage StageDiagnostics, possibly plus a per-point entry
 * comparing the final model against the original parents. JSON turns Infinity into null, and a
 * newer engine may add fields, so entries are read leniently: what we use is typed, the rest ignored.
 */
const Num = z.number().nullable();
const NumRecord = z.record(z.string(), Num);

const TensorView = z.looseObject({
  tensor: z.string().default(''),
  layer: z.number().int().nullable().optional(),
  numel: z.number().nonnegative().optional(),
  taskVectorNorm: NumRecord.optional(),
  cosine: NumRecord.optional(),
  signConflict: Num.optional(),
  keptFraction: NumRecord.optional(),
  rescale: NumRecord.optional(),
  mergedDeltaNorm: Num.optional(),
  mergedDeltaRelToParent: NumRecord.optional(),
  /** Final-vs-parents entries: <F-B, P-B> / ||P-B||^2, how much of each original parent survives. */
  retained: NumRecord.optional(),
  /** Final-vs-parents entries: share of elements where the final delta has the parent's task-vector sign. */
  signAgreement: NumRecord.optional(),
});
export type TensorView = z.infer<typeof TensorView>;

const StageView = z.looseObject({
  stage: z.string().default('merge'),
  method: z.string().optional(),
  rescaleRule: z.string().optional(),
  seed: z.number().nullable().optional(),
  tensors: z.array(TensorView).default([]),
  totals: TensorView.partial().optional(),
  warnings: z.array(z.string()).default([]),
});
export type StageView = z.infer<typeof StageView>;

export interface ParsedDiagnostics {
  stages: StageView[];
  /** Entries that were not diagnostics we understand (kept count for the report's warnings). */
  skipped: number;
}

// Rules, charts and samples all read a record's diagnostics; parse each array once.
const parsed = new WeakMap<readonly unknown[], ParsedDiagnostics>();

export function parseDiagnostics(entries: readonly unknown[]): ParsedDiagnostics {
  const hit = parsed.get(entries);
  if (hit) return hit;
  const out = parseDiagnosticsUncached(entries);
  parsed.set(entries, out);
  return out;
}

function parseDiagnosticsUncached(entries: readonly unknown[]): ParsedDiagnostics {
  const stages: StageView[] = [];
  let skipped = 0;
  for (const e of entries) {
    const p = StageView.safeParse(e);
    if (p.success && (p.data.tensors.length > 0 || p.data.totals)) stages.push(p.data);
    else skipped++;
  }
  return { stages, skipped };
}

/** Typed entry point for callers holding engine diagnostics rather than parsed JSON. */
export function viewStages(stages: readonly StageDiagnostics[]): StageView[] {
  return parseDiagnostics(stages).stages;
}

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

export type { TensorKind } from '../checkpoint/names.js';

export function tensorKind(name: string): TensorKind {
  return parseTensorName(name).kind;
}

/** Where a tensor sits: a decoder layer index, or before/after the layer stack. */
export function layerOf(t: TensorView): number | 'embed' | 'head' | 'other' {
  if (finite(t.layer)) return t.layer;
  const n = parseTensorName(t.tensor);
  if (n.layer !== null) return n.layer;
  if (n.position === 'before') return 'embed';
  if (n.kind === 'lm_head' || n.kind === 'norm') return 'head';
  return 'other';
}

export interface LayerRow {
  layer: number | 'embed' | 'head' | 'other';
  /** Sort key: embed first, then layers, then head. */
  order: number;
  label: string;
  numel: number;
  taskVectorNorm: Record<string, number>;
  mergedDeltaNorm: number | undefined;
  mergedDeltaRelToParent: Record<string, number>;
  signConflict: number | undefined;
  keptFraction: Record<string, number>;
  rescale: Record<string, number>;
  /** Share of each original parent's task vector the final model keeps (final-vs-parents entries only). */
  retained: Record<string, number>;
}

const orderOf = (l: LayerRow['layer']): number => (l === 'embed' ? -1 : l === 'head' ? 1e6 : l === 'other' ? 1e6 + 1 : l);
const labelOf = (l: LayerRow['layer']): string => (typeof l === 'number' ? String(l) : l);

/**
 * Per-layer totals: norms combine as sqrt of sums of squares, fractions are numel-weighted means.
 * A parent's per-tensor norm missing from an entry is recovered from merged / rel when both exist.
 */
export function layerTable(stage: StageView): LayerRow[] {
  interface Acc { numel: number; tvSq: Map<string, number>; mergedSq: number; mergedSeen: boolean; relW: Map<string, [number, number]>; sc: [number, number]; kept: Map<string, [number, number]>; resc: Map<string, [number, number]>; ret: Map<string, [number, number]> }
  const acc = new Map<LayerRow['layer'], Acc>();
  const addW = (m: Map<string, [number, number]>, k: string, v: number, w: number): void => {
    const cur = m.get(k) ?? [0, 0];
    m.set(k, [cur[0] + v * w, cur[1] + w]);
  };
  for (const t of stage.tensors) {
    const l = layerOf(t);
    let a = acc.get(l);
    if (!a) acc.set(l, (a = { numel: 0, tvSq: new Map(), mergedSq: 0, mergedSeen: false, relW: new Map(), sc: [0, 0], kept: new Map(), resc: new Map(), ret: new Map() }));
    const w = finite(t.numel) && t.numel > 0 ? t.numel : 1;
    a.numel += w;
    const merged = finite(t.mergedDeltaNorm) ? t.mergedDeltaNorm : undefined;
    if (merged !== undefined) { a.mergedSq += merged * merged; a.mergedSeen = true; }
    const models = new Set([...Object.keys(t.taskVectorNorm ?? {}), ...Object.keys(t.mergedDeltaRelToParent ?? {})]);
    for (const m of models) {
      let tv = t.taskVectorNorm?.[m];
      const rel = t.mergedDeltaRelToParent?.[m];
      if (!finite(tv) && merged !== undefined && finite(rel) && rel > 0) tv = merged / rel;
      if (finite(tv)) a.tvSq.set(m, (a.tvSq.get(m) ?? 0) + tv * tv);
      if (finite(rel)) addW(a.relW, m, rel, w);
    }
    if (finite(t.signConflict)) { a.sc[0] += t.signConflict * w; a.sc[1] += w; }
    for (const [m, v] of Object.entries(t.keptFraction ?? {})) if (finite(v)) addW(a.kept, m, v, w);
    for (const [m, v] of Object.entries(t.rescale ?? {})) if (finite(v)) addW(a.resc, m, v, w);
    // A layer's retained share is <F,P> / ||P||^2 over the layer: tensors weigh by ||P||^2.
    for (const [m, v] of Object.entries(t.retained ?? {})) {
      const tv = t.taskVectorNorm?.[m];
      if (finite(v)) addW(a.ret, m, v, finite(tv) ? tv * tv : w);
    }
  }
  const mean = (m: Map<string, [number, number]>): Record<string, number> =>
    Object.fromEntries([...m.entries()].filter(([, [, w]]) => w > 0).map(([k, [s, w]]) => [k, s / w]));
  const rows: LayerRow[] = [];
  for (const [layer, a] of acc) {
    const taskVectorNorm = Object.fromEntries([...a.tvSq.entries()].map(([k, v]) => [k, Math.sqrt(v)]));
    const mergedDeltaNorm = a.mergedSeen ? Math.sqrt(a.mergedSq) : undefined;
    // The layer's ratio is of layer norms (not a mean of tensor ratios) whenever both norms are known.
    const rel = mean(a.relW);
    if (mergedDeltaNorm !== undefined) for (const [m, tv] of Object.entries(taskVectorNorm)) if (tv > 0) rel[m] = mergedDeltaNorm / tv;
    rows.push({
      layer, order: orderOf(layer), label: labelOf(layer), numel: a.numel, taskVectorNorm, mergedDeltaNorm,
      mergedDeltaRelToParent: rel, signConflict: a.sc[1] > 0 ? a.sc[0] / a.sc[1] : undefined,
      keptFraction: mean(a.kept), rescale: mean(a.resc), retained: mean(a.ret),
    });
  }
  return rows.sort((x, y) => x.order - y.order);
}

export interface Standout {
  text: string;
  /** Larger is more remarkable; used to keep the few that matter. */
  severity: number;
  stage: string;
  kind: 'delta_high' | 'delta_low' | 'retained_low' | 'retained_high' | 'sign_conflict' | 'sparsify' | 'cosine' | 'warning';
}

/** "0-3", "5", "embed" for a sorted run of rows. */
function span(rows: LayerRow[]): string {
  const named = { embed: 'the embeddings', head: 'the final norm and lm_head', other: 'other tensors' } as const;
  const nums = rows.filter((r) => typeof r.layer === 'number');
  const parts: string[] = [];
  if (rows[0].layer === 'embed') parts.push(named.embed);
  if (nums.length === 1) parts.push(`layer ${nums[0].label}`);
  else if (nums.length > 1) parts.push(`layers ${nums[0].label}-${nums[nums.length - 1].label}`);
  for (const r of rows) if (r.layer === 'head' || r.layer === 'other') parts.push(named[r.layer]);
  return parts.join(' and ');
}

/** Contiguous runs (in layer order) of rows satisfying `pred`. */
function runs(rows: LayerRow[], pred: (r: LayerRow) => boolean): LayerRow[][] {
  const out: LayerRow[][] = [];
  let cur: LayerRow[] = [];
  for (const r of rows) {
    if (pred(r)) cur.push(r);
    else if (cur.length) { out.push(cur); cur = []; }
  }
  if (cur.length) out.push(cur);
  return out;
}

const pct = (v: number): string => `${Math.round(v * 100)}%`;

/**
 * The diagnostics that stand out on one point, worst first: where the merged delta is far larger
 * (or smaller) than a parent's, where signs conflict, how much sparsification kept and rescaled.
 */
export function standoutDiagnostics(stages: readonly StageView[], th: StandoutThresholds = DEFAULT_STANDOUTS): Standout[] {
  const out: Standout[] = [];
  const multi = stages.length > 1;
  for (const st of stages) {
    const where = multi ? `${st.stage}: ` : '';
    const rows = layerTable(st);
    const models = [...new Set(rows.flatMap((r) => Object.keys(r.mergedDeltaRelToParent)))];
    for (const m of models) {
      const has = rows.filter((r) => finite(r.mergedDeltaRelToParent[m]));
      const hi = runs(has, (r) => r.mergedDeltaRelToParent[m] >= th.highRel);
      const lo = runs(has, (r) => r.mergedDeltaRelToParent[m] <= th.lowRel);
      for (const run of hi) {
        const vals = run.map((r) => r.mergedDeltaRelToParent[m]);
        const mx = Math.max(...vals);
        const all = run.length === has.length;
        out.push({
          stage: st.stage, kind: 'delta_high', severity: mx * (0.5 + run.length / Math.max(1, has.length)),
          text: `${where}merged delta norm ${fmt(mx, 2)}x the ${m} parent's ${all ? 'in every layer' : `in ${span(run)}`}`,
        });
      }
      for (const run of lo) {
        const vals = run.map((r) => r.mergedDeltaRelToParent[m]);
        const mn = Math.min(...vals);
        const all = run.length === has.length;
        out.push({
          stage: st.stage, kind: 'delta_low', severity: (1 / Math.max(mn, 1e-3)) * (0.5 + run.length / Math.max(1, has.length)),
          text: `${where}merged delta only ${fmt(mn, 2)}x the ${m} parent's ${all ? 'in every layer' : `in ${span(run)}`}: its contribution is mostly gone`,
        });
      }
    }
    // Final-vs-parents: which ORIGINAL skill the chain kept, lost or overshot.
    const retModels = [...new Set(rows.flatMap((r) => Object.keys(r.retained)))];
    for (const m of retModels) {
      const has = rows.filter((r) => finite(r.retained[m]));
      for (const run of runs(has, (r) => r.retained[m] <= th.lowRel)) {
        const mn = Math.min(...run.map((r) => r.retained[m]));
        const all = run.length === has.length;
        out.push({
          stage: st.stage, kind: 'retained_low', severity: (1.5 - Math.max(mn, 0)) * 2 * (0.5 + run.length / Math.max(1, has.length)),
          text: `${where}the final model keeps only ${fmt(mn, 2)} of ${m}'s task vector ${all ? 'in every layer' : `in ${span(run)}`}`,
        });
      }
      for (const run of runs(has, (r) => r.retained[m] >= th.highRel)) {
        const mx = Math.max(...run.map((r) => r.retained[m]));
        const all = run.length === has.length;
        out.push({
          stage: st.stage, kind: 'retained_high', severity: mx * (0.5 + run.length / Math.max(1, has.length)),
          text: `${where}the final model carries ${fmt(mx, 2)}x ${m}'s task vector ${all ? 'in every layer' : `in ${span(run)}`}`,
        });
      }
    }
    // Sign conflicts by tensor kind: TIES/DARE-TIES resolve them by vote, so a high share means lost signal.
    const byKind = new Map<TensorKind, [number, number]>();
    for (const t of st.tensors) {
      if (!finite(t.signConflict)) continue;
      const k = tensorKind(t.tensor);
      const w = finite(t.numel) && t.numel > 0 ? t.numel : 1;
      const cur = byKind.get(k) ?? [0, 0];
      byKind.set(k, [cur[0] + t.signConflict * w, cur[1] + w]);
    }
    // One line per stage, worst kinds first, so conflicts do not crowd out the other findings.
    const hot = [...byKind.entries()].map(([k, [s, w]]) => ({ k, v: s / w })).filter((x) => x.v >= th.signConflict).sort((a, b) => b.v - a.v);
    if (hot.length) {
      const list = hot.slice(0, 3).map((x) => `${pct(x.v)} in ${x.k}`).join(', ');
      out.push({ stage: st.stage, kind: 'sign_conflict', severity: 1 + 2 * hot[0].v, text: `${where}sign conflicts ${list} tensors${hot.length > 3 ? ` (and ${hot.length - 3} more kinds)` : ''}` });
    }
    if (byKind.size === 0 && finite(st.totals?.signConflict) && st.totals!.signConflict! >= th.signConflict) {
      out.push({ stage: st.stage, kind: 'sign_conflict', severity: 1 + 2 * st.totals!.signConflict!, text: `${where}sign conflicts ${pct(st.totals!.signConflict!)} overall` });
    }
    // Sparsification: a kept fraction with its rescale is the DARE story in two numbers.
    const kept = weightedByModel(st, 'keptFraction');
    const resc = weightedByModel(st, 'rescale');
    for (const [m, k] of Object.entries(kept)) {
      const r = resc[m];
      if (k < 0.99 || (finite(r) && Math.abs(r - 1) > 0.01)) {
        const rule = st.rescaleRule && st.rescaleRule !== 'none' ? ` (${st.rescaleRule})` : '';
        const rTxt = finite(r) ? `, rescale x${fmt(r, 2)}${rule}` : '';
        out.push({ stage: st.stage, kind: 'sparsify', severity: 1 + (finite(r) ? Math.abs(Math.log(r)) : 0) + (1 - k), text: `${where}kept fraction ${fmt(k, 2)} of ${m}'s delta${rTxt}` });
      }
    }
    for (const [pair, c] of Object.entries(st.totals?.cosine ?? {})) {
      if (finite(c) && c < -0.1) out.push({ stage: st.stage, kind: 'cosine', severity: 1 + Math.abs(c) * 2, text: `${where}task vectors ${pair.replace('|', ' and ')} point apart (cosine ${fmt(c, 2)})` });
    }
    for (const w of st.warnings.slice(0, 2)) out.push({ stage: st.stage, kind: 'warning', severity: 0.5, text: `${where}${w}` });
  }
  // The final-vs-parents entry often repeats the last stage's finding word for word: say it once.
  const merged = new Map<string, Standout & { stages: string[] }>();
  for (const x of out.sort((a, b) => b.severity - a.severity)) {
    const body = multi ? x.text.slice(x.stage.length + 2) : x.text;
    const prev = merged.get(body);
    if (prev) prev.stages.push(x.stage);
    else merged.set(body, { ...x, stages: [x.stage] });
  }
  return [...merged.entries()]
    .map(([body, x]) => {
      const inOrder = stages.map((st) => st.stage).filter((name, i, all) => x.stages.includes(name) && all.indexOf(name) === i);
      return { stage: x.stage, kind: x.kind, severity: x.severity, text: multi ? `${inOrder.join(', ')}: ${body}` : body };
    })
    .slice(0, th.max);
}

function weightedByModel(st: StageView, field: 'keptFraction' | 'rescale'): Record<string, number> {
  const acc = new Map<string, [number, number]>();
  for (const t of st.tensors) {
    const w = finite(t.numel) && t.numel > 0 ? t.numel : 1;
    for (const [m, v] of Object.entries(t[field] ?? {})) {
      if (!finite(v)) continue;
      const cur = acc.get(m) ?? [0, 0];
      acc.set(m, [cur[0] + v * w, cur[1] + w]);
    }
  }
  if (acc.size === 0) {
    const tot = st.totals?.[field];
    return Object.fromEntries(Object.entries(tot ?? {}).filter(([, v]) => finite(v)) as [string, number][]);
  }
  return Object.fromEntries([...acc.entries()].map(([k, [s, w]]) => [k, s / w]));
}
