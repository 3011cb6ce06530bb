import type { PointNode } from './plan.js';
import type { DiskGate } from './diskGate.js';
import type { RecordNode, TaskGraph, WorkNode } from './graph.js';

/**
 * The state of a task graph while an executor runs it: which work nodes wait, run, are done or
 * failed; what is ready to start; and when a point's record can be written. A failure cuts off
 * everything downstream of it (those nodes fail with the same reason, without running).
 *
 * Executors drive it: they start what they choose (the local one what `ready()` offers within
 * its slots; Slurm everything at once, queued behind dependencies) and report each outcome with
 * `settle`. The listener gets every settled node (to count work and release stage folders) and
 * every record as soon as it can be written.
 */

export type WorkState = 'waiting' | 'running' | 'done' | 'failed';

export type Outcome = { ok: true; seconds: number; alreadyDone: boolean } | { ok: false; error: string };

export interface SchedulerListener {
  /** A work node finished, or was cut off by a failure upstream (then it never ran). */
  settled(node: WorkNode, outcome: Outcome): Promise<void>;
  /** Every part of the point is done (`failure` null), or one failed (its reason). */
  record(point: PointNode, failure: string | null): void;
}

export class Scheduler {
  private readonly states = new Map<string, WorkState>();
  private readonly errors = new Map<string, string>();
  /** Where a running node runs (a Slurm job id, ...), for progress and status. */
  private readonly where = new Map<string, string>();
  private readonly recorded = new Set<string>();
  private readonly recordsById: Map<string, RecordNode>;

  constructor(
    readonly graph: TaskGraph,
    private readonly listener: SchedulerListener,
    /** max_models_on_disk, when the experiment sets it (and checkpoints are not all kept). */
    readonly disk: DiskGate | null = null,
  ) {
    for (const id of graph.work.keys()) this.states.set(id, 'waiting');
    this.recordsById = new Map(graph.records.map((r) => [r.id, r]));
  }

  /** Emit the records that need no work at all (none today; kept so no point is ever lost). */
  start(): void {
    this.checkRecords(this.graph.records);
  }

  state(id: string): WorkState {
    const s = this.states.get(id);
    if (!s) throw new Error(`internal: no work node ${id}`);
    return s;
  }

  location(id: string): string | undefined {
    return this.where.get(id);
  }

  nodes(state: WorkState): WorkNode[] {
    return [...this.graph.work.values()].filter((n) => this.states.get(n.id) === state);
  }

  /** Waiting nodes whose dependencies are all done: evaluations first (they free checkpoints), then by the first point that needs them. */
  ready(): WorkNode[] {
    return this.nodes('waiting')
      .filter((n) => n.deps.every((d) => this.states.get(d) === 'done'))
      .sort((a, b) => (a.kind === 'merge' ? 1 : 0) - (b.kind === 'merge' ? 1 : 0) || a.order - b.order);
  }

  /** Nodes not yet done or failed. */
  get unsettled(): number {
    let n = 0;
    for (const s of this.states.values()) if (s === 'waiting' || s === 'running') n++;
    return n;
  }

  /** May a ready node start now, as far as the disk bound goes? (Slots are the executor's.) */
  admits(node: WorkNode): boolean {
    return this.disk?.admits(node) ?? true;
  }

  markRunning(id: string, where?: string): void {
    if (this.state(id) !== 'waiting' && this.state(id) !== 'running') throw new Error(`internal: ${id} is ${this.state(id)}, cannot run`);
    if (this.state(id) === 'waiting') this.disk?.took(this.graph.work.get(id)!);
    this.states.set(id, 'running');
    if (where) this.where.set(id, where);
    else this.where.delete(id);
  }

  /** Back to waiting (a retry queued behind its dependencies again). */
  markWaiting(id: string): void {
    if (this.state(id) === 'running') this.states.set(id, 'waiting');
    this.where.delete(id);
  }

  /** Record a node's outcome; returns the nodes its failure cut off (empty on success). */
  async settle(id: string, outcome: Outcome): Promise<WorkNode[]> {
    const node = this.graph.work.get(id);
    if (!node) throw new Error(`internal: no work node ${id}`);
    const s = this.state(id);
    if (s === 'done' || s === 'failed') return [];
    this.where.delete(id);
    const cut: WorkNode[] = [];
    if (outcome.ok) this.states.set(id, 'done');
    else {
      const reason = `${node.what} failed: ${outcome.error}`;
      this.states.set(id, 'failed');
      this.errors.set(id, reason);
      this.cutOff(node, reason, cut);
      // A failed merge leaves no folder (its output is written under a temporary name).
      if (node.writes !== null) this.disk?.released(node.writes);
    }
    await this.listener.settled(node, outcome);
    for (const c of cut) await this.listener.settled(c, { ok: false, error: this.errors.get(c.id)! });
    const touched = new Set<RecordNode>();
    for (const n of [node, ...cut]) for (const d of this.graph.dependents.get(n.id) ?? []) {
      const r = this.recordsById.get(d);
      if (r) touched.add(r);
    }
    this.checkRecords([...touched]);
    return cut;
  }

  private cutOff(node: WorkNode, reason: string, out: WorkNode[]): void {
    for (const d of this.graph.dependents.get(node.id) ?? []) {
      const dn = this.graph.work.get(d);
      if (!dn || this.states.get(d) !== 'waiting') continue;
      this.states.set(d, 'failed');
      this.errors.set(d, reason);
      out.push(dn);
      this.cutOff(dn, reason, out);
    }
  }

  private checkRecords(rs: RecordNode[]): void {
    for (const r of [...rs].sort((a, b) => a.point.index - b.point.index)) {
      if (this.recorded.has(r.id)) continue;
      const bad = r.deps.find((d) => this.states.get(d) === 'failed');
      if (bad || r.deps.every((d) => this.states.get(d) === 'done')) {
        this.recorded.add(r.id);
        this.listener.record(r.point, bad ? this.errors.get(bad)! : null);
      }
    }
  }

  /** Points whose record was never written (the run was interrupted, or their work never settled). */
  unrecorded(): PointNode[] {
    return this.graph.records.filter((r) => !this.recorded.has(r.id)).map((r) => r.point);
  }
}
