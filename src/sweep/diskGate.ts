import type { TaskGraph, WorkNode } from './graph.js';

/**
 * `max_models_on_disk`: merged checkpoints on disk at once. A merge holds a place from its start
 * until its folder is deleted (every node that reads it has settled) or until it fails.
 *
 * A merge starts only if the places free cover its whole chain: itself plus the longest run of
 * merges that read its output (a two-stage recipe's first stage needs 2: its folder stays while
 * the second stage is written). The merge started last can then always finish its chain with the
 * places it left free, and every other holder only waits on evaluations, which need no place; so
 * the bound never deadlocks the sweep, and it holds as long as the longest chain fits in it.
 */
export class DiskGate {
  private readonly held = new Set<string>();
  /** Merge node id -> places its chain needs. */
  private readonly chain = new Map<string, number>();

  constructor(
    graph: TaskGraph,
    readonly limit: number,
    /** Stage keys whose folders are on disk already (left by an interrupted run) and read by this graph. */
    onDisk: Iterable<string> = [],
  ) {
    const need = (n: WorkNode): number => {
      const known = this.chain.get(n.id);
      if (known !== undefined) return known;
      const next = (graph.dependents.get(n.id) ?? []).map((d) => graph.work.get(d)).filter((d): d is WorkNode => d?.kind === 'merge');
      const v = 1 + Math.max(0, ...next.map(need));
      this.chain.set(n.id, v);
      return v;
    };
    for (const n of graph.work.values()) if (n.kind === 'merge') need(n);
    for (const k of onDisk) this.held.add(k);
  }

  /** The longest chain of merges in the graph: the smallest bound it can run under. */
  get longestChain(): number {
    return Math.max(0, ...this.chain.values());
  }

  get used(): number {
    return this.held.size;
  }

  /** May `node` start now? Anything but a merge may. */
  admits(node: WorkNode): boolean {
    if (node.kind !== 'merge' || node.writes === null) return true;
    return this.limit - this.held.size >= (this.chain.get(node.id) ?? 1);
  }

  /** `node` started: its output holds a place. */
  took(node: WorkNode): void {
    if (node.kind === 'merge' && node.writes !== null) this.held.add(node.writes);
  }

  /** The folder of stage `key` is gone (deleted, or never written: its merge failed). */
  released(key: string): void {
    this.held.delete(key);
  }
}
