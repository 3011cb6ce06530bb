import path from 'node:path';
import type { CacheLayout } from './cache.js';
import type { EvalConfig } from './experiment.js';
import type { Plan, PointNode } from './plan.js';
import { pointComplete, type Have } from './scan.js';
import type { Task } from './tasks.js';
import type { WorkKind } from './kinds.js';

/**
 * The work of a sweep as an explicit graph, built from the plan and what the cache holds.
 *
 * Work nodes (merge a stage, evaluate a model, compute a point's final-vs-parents diagnostics)
 * are idempotent: each leaves its result in the cache under a content key and does nothing when
 * the result is already there, so an executor may run one twice (a retry, a re-attached run)
 * without harm. Record nodes, one per unfinished point, turn cache files into the point's result
 * record; they run in the process that owns results.jsonl, never on a worker.
 *
 * Building the graph is pure: no file is read.
 */

export type { WorkKind } from './kinds.js';

/**
 * What one task occupies while it runs. An executor admits a task only where these fit: the
 * local one counts them against its slots, Slurm turns them into a job's request.
 */
export interface Resources {
  cpus: number;
  /** GPUs the task needs (device indices are assigned by the executor). */
  gpus: number;
  /**
   * Evaluation slots: an evaluation by a server or a program of its own (openai, lm-eval,
   * command) takes one instead of a CPU slot, since its worker only waits on that program; so
   * merges of the next points run beside it.
   */
  evals: number;
  /** Ports for a server the task starts (the local executor hands one out; on Slurm the task picks its own). */
  ports: number;
  /** Bytes the task leaves on disk until its readers are done (a merged checkpoint). */
  diskBytes: number;
}

/** A task that takes one CPU slot and nothing else. */
export const CPU_TASK: Resources = { cpus: 1, gpus: 0, evals: 0, ports: 0, diskBytes: 0 };

export interface WorkNode {
  id: string;
  kind: WorkKind;
  task: Task;
  /** Ids of work nodes that must be done first. */
  deps: string[];
  resources: Resources;
  /** Smallest index of a point that needs this node (scheduling order). */
  order: number;
  /** Short text for progress lines. */
  label: string;
  /** What failed, when it fails ("merge of stage X", "evaluation", ...). */
  what: string;
  /** Stage folders this node reads; each is released when the node finishes. */
  reads: string[];
  /** The stage key a merge writes; null for other kinds. */
  writes: string | null;
}

export interface RecordNode {
  id: string;
  kind: 'record';
  point: PointNode;
  /** Work nodes whose results the record is made of, in the order their failures are reported. */
  deps: string[];
}

export interface TaskGraph {
  work: Map<string, WorkNode>;
  /** One per point not complete in the cache, in plan order. */
  records: RecordNode[];
  /** Work node id -> ids of the work and record nodes that depend on it. */
  dependents: Map<string, string[]>;
  /** Stage key -> how many work nodes read its folder. */
  readers: Map<string, number>;
}

export interface GraphOptions {
  /** Bytes of one merged checkpoint (for the disk resource). */
  modelBytes: number;
  /** GPUs one evaluation by another backend than the built-in one asks for (0 when none are listed). */
  evalGpus?: number;
  /** Folder of the points' logs (a started server's or lm_eval's output goes to `POINT.log` there). */
  logsDir?: string;
  /** Folder of the pid files of running servers (reapServers stops what a killed run left). */
  pidDir?: string;
  /** Folder of lm_eval's own output (`POINT/`), kept for reading. */
  lmEvalDir?: string;
}

/** A point's id as a file name: `chained density=0.3 seed=1` -> `chained_density=0.3_seed=1`. */
export function pointFileName(id: string): string {
  return id.replace(/[^A-Za-z0-9._=-]+/g, '_');
}

/** What an evaluation by `backend` occupies (see Resources). */
export function evalResources(backend: EvalConfig['backend'], gpus: number): Resources {
  if (backend.type === 'builtin') return CPU_TASK;
  return { cpus: 0, gpus, evals: 1, ports: backend.type === 'openai' && backend.serve !== undefined ? 1 : 0, diskBytes: 0 };
}

const mergeId = (key: string): string => `merge:${key}`;

export function buildGraph(plan: Plan, layout: CacheLayout, have: Have, merges: Set<string>, opts: GraphOptions): TaskGraph {
  const exp = plan.experiment;
  const work = new Map<string, WorkNode>();
  const add = (n: WorkNode): WorkNode => {
    const existing = work.get(n.id);
    if (existing) {
      existing.order = Math.min(existing.order, n.order);
      return existing;
    }
    work.set(n.id, n);
    return n;
  };
  const cpu = CPU_TASK;
  const external = exp.eval.backend.type !== 'builtin';
  const pointOrder = new Map(plan.points.map((p) => [p.id, p.index]));
  for (const key of merges) {
    const s = plan.stages.get(key)!;
    const inputs: Record<string, string> = {};
    const deps: string[] = [];
    const reads: string[] = [];
    for (const [ref, inp] of Object.entries(s.inputs)) {
      if (inp.kind === 'model') inputs[ref] = inp.dir;
      else {
        inputs[ref] = layout.stageDir(inp.key);
        reads.push(inp.key);
        if (merges.has(inp.key) && !deps.includes(mergeId(inp.key))) deps.push(mergeId(inp.key));
      }
    }
    add({
      id: mergeId(key),
      kind: 'merge',
      task: { type: 'merge', key, cacheRoot: layout.root, recipe: s.recipe, stageName: s.name, modelDirs: plan.modelDirs, inputs, seed: s.seed, allowCrimes: s.allowCrimes },
      deps,
      resources: { ...cpu, diskBytes: opts.modelBytes },
      order: Math.min(...s.points.map((id) => pointOrder.get(id) ?? Infinity)),
      label: `merge ${s.name}`,
      what: `merge of stage ${s.name}`,
      reads,
      writes: key,
    });
  }

  const records: RecordNode[] = [];
  for (const p of plan.points) {
    if (pointComplete(p, have)) continue;
    const deps: string[] = [];
    for (const k of p.stages) if (merges.has(k) && !deps.includes(mergeId(k))) deps.push(mergeId(k));
    const finalDir = p.role === 'merge' ? layout.stageDir(p.modelKey) : p.modelDir!;
    const finalDep = p.role === 'merge' && merges.has(p.modelKey) ? [mergeId(p.modelKey)] : [];
    const finalReads = p.role === 'merge' ? [p.modelKey] : [];
    if (!have.evals.has(p.evalKey)) {
      const name = pointFileName(p.id);
      const files = external
        ? {
            ...(opts.logsDir ? { logFile: path.join(opts.logsDir, `${name}.log`) } : {}),
            ...(opts.pidDir ? { pidDir: opts.pidDir } : {}),
            ...(opts.lmEvalDir && exp.eval.backend.type === 'lm-eval' ? { workDir: path.join(opts.lmEvalDir, name) } : {}),
          }
        : {};
      const n = add({
        id: `eval:${p.evalKey}`,
        kind: 'eval',
        task: { type: 'eval', key: p.evalKey, cacheRoot: layout.root, modelDir: finalDir, eval: exp.eval, ...files },
        deps: [...finalDep],
        resources: evalResources(exp.eval.backend, opts.evalGpus ?? 0),
        order: p.index,
        label: `eval ${p.id}`,
        what: 'evaluation',
        reads: finalReads,
        writes: null,
      });
      deps.push(n.id);
    }
    if (p.pointDiag && !have.pds.has(p.pointDiag.key)) {
      const n = add({
        id: `pd:${p.pointDiag.key}`,
        kind: 'pointdiag',
        task: { type: 'pointdiag', key: p.pointDiag.key, cacheRoot: layout.root, finalDir, base: p.pointDiag.base, parents: p.pointDiag.parents },
        deps: [...finalDep],
        resources: cpu,
        order: p.index,
        label: `diagnostics ${p.id}`,
        what: 'final-vs-parents diagnostics',
        reads: finalReads,
        writes: null,
      });
      deps.push(n.id);
    }
    records.push({ id: `record:${p.id}`, kind: 'record', point: p, deps });
  }

  const dependents = new Map<string, string[]>([...work.keys()].map((id) => [id, []]));
  const readers = new Map<string, number>();
  for (const n of work.values()) {
    for (const d of n.deps) dependents.get(d)!.push(n.id);
    for (const k of n.reads) readers.set(k, (readers.get(k) ?? 0) + 1);
  }
  for (const r of records) for (const d of r.deps) dependents.get(d)!.push(r.id);
  return { work, records, dependents, readers };
}

/** Depth of each work node: 0 without dependencies, else one more than its deepest dependency. */
export function depths(graph: TaskGraph): Map<string, number> {
  const out = new Map<string, number>();
  const visit = (id: string): number => {
    const known = out.get(id);
    if (known !== undefined) return known;
    const n = graph.work.get(id)!;
    const d = n.deps.length ? 1 + Math.max(...n.deps.map(visit)) : 0;
    out.set(id, d);
    return d;
  };
  for (const id of graph.work.keys()) visit(id);
  return out;
}

const KIND_ORDER: Record<WorkKind, number> = { merge: 0, eval: 1, pointdiag: 2 };

/**
 * Work nodes grouped by kind and depth (`merge-0`, `eval-2`, ...), shallowest first and, within a
 * group, in scheduling order: what one job array of a cluster executor holds.
 */
export function kindDepthGroups(graph: TaskGraph, nodes: Iterable<WorkNode> = graph.work.values()): Array<{ group: string; kind: WorkKind; depth: number; nodes: WorkNode[] }> {
  const depth = depths(graph);
  const groups = new Map<string, { group: string; kind: WorkKind; depth: number; nodes: WorkNode[] }>();
  for (const n of nodes) {
    const d = depth.get(n.id)!;
    const group = `${n.kind}-${d}`;
    if (!groups.has(group)) groups.set(group, { group, kind: n.kind, depth: d, nodes: [] });
    groups.get(group)!.nodes.push(n);
  }
  for (const g of groups.values()) g.nodes.sort((a, b) => a.order - b.order);
  return [...groups.values()].sort((a, b) => a.depth - b.depth || KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
}
