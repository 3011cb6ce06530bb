import path from 'node:path';
import { loadResults, resultsPath } from '../results/store.js';
import { CacheLayout } from './cache.js';
import type { SlurmClient } from './executors/slurm/commands.js';
import type { QueueEntry } from './executors/slurm/parse.js';
import { JobStore } from './executors/slurm/store.js';
import { loadExperiment } from './experiment.js';
import { buildGraph } from './graph.js';
import { FolderHasher } from './hash.js';
import { lockHolder } from './lock.js';
import { buildPlan } from './plan.js';
import { neededMerges, pointComplete, scanCache } from './scan.js';
import { evalVersion } from './suites.js';

/**
 * `mergelab status EXP`: where each point of a sweep stands, from the cache (what is done), the
 * results store (what failed, and why) and, for a Slurm run, squeue (what is running or queued,
 * in which job). It reads only: it can run beside a run in progress.
 */

export type PointState = 'done' | 'running' | 'failed' | 'queued';

export interface PointStatus {
  point: string;
  state: PointState;
  /** Where it runs (job ids), why it failed, or what it waits for. */
  detail: string;
}

export interface SweepStatus {
  experiment: string;
  expDir: string;
  /** The process of a run in progress, if any. */
  runPid: number | null;
  points: PointStatus[];
  counts: Record<PointState, number>;
  /** Slurm jobs of this experiment still queued or running. */
  slurmJobs: string[];
  /** Why Slurm could not be asked, when it could not. */
  slurmNote: string | null;
}

export interface StatusOptions {
  reportsDir?: string;
  zooDir?: string;
  client?: SlurmClient;
}

export async function sweepStatus(file: string, opts: StatusOptions = {}): Promise<SweepStatus> {
  const exp = await loadExperiment(file, { zooDir: opts.zooDir });
  const expDir = path.resolve(opts.reportsDir ?? 'reports', exp.name);
  const layout = new CacheLayout(path.join(expDir, 'cache'));
  const plan = await buildPlan(exp, { hasher: new FolderHasher(layout.hashMemo(), true), evaluatorVersion: await evalVersion(exp), checkHeaders: false });
  // A look only: nothing removed, no checkpoint read in full (the run checks them).
  const have = await scanCache(plan, layout, { repair: false, verify: false });
  const graph = buildGraph(plan, layout, have, neededMerges(plan, have), { modelBytes: 0 });
  const { records } = await loadResults(resultsPath(expDir), { repair: false });
  const recorded = new Map(records.map((r) => [r.point, r]));

  // Slurm's view: the element each task was last submitted as, and what squeue says of it.
  const store = await JobStore.load(expDir, exp.name);
  const latest = store.latest();
  let live = new Map<string, QueueEntry>();
  let slurmNote: string | null = null;
  if (store.submissions.length) {
    try {
      const client = opts.client ?? (await import('./executors/slurm/commands.js')).slurmClient;
      live = new Map((await client.queue(store.submissions.map((s) => s.name))).map((e) => [e.element, e]));
    } catch (e) {
      slurmNote = `could not ask Slurm (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
    }
  }
  const slurmOf = (taskId: string): QueueEntry | null => {
    const el = latest.get(taskId)?.element;
    return el ? (live.get(el) ?? null) : null;
  };

  const byPoint = new Map(graph.records.map((r) => [r.point.id, r]));
  const points: PointStatus[] = plan.points.map((p) => {
    const rec = recorded.get(p.id);
    if (pointComplete(p, have)) return { point: p.id, state: 'done', detail: rec?.status === 'ok' ? 'recorded' : 'complete in the cache (recorded by the next run)' };
    const deps = byPoint.get(p.id)?.deps ?? [];
    const inSlurm = deps.flatMap((d) => {
      const q = slurmOf(d);
      return q ? [{ task: graph.work.get(d)!, q }] : [];
    });
    const running = inSlurm.filter((x) => x.q.state !== 'PENDING');
    if (running.length) return { point: p.id, state: 'running', detail: running.map((x) => `${x.task.kind} in job ${x.q.element}${x.q.node ? ` on ${x.q.node}` : ''}`).join(', ') };
    if (rec?.status === 'failed' && inSlurm.length === 0) return { point: p.id, state: 'failed', detail: rec.error ?? 'failed' };
    if (inSlurm.length) return { point: p.id, state: 'queued', detail: inSlurm.map((x) => `${x.task.kind} in job ${x.q.element} (${x.q.reason})`).join(', ') };
    return { point: p.id, state: 'queued', detail: `to do: ${deps.map((d) => graph.work.get(d)!.kind).join(', ')}` };
  });
  const counts: Record<PointState, number> = { done: 0, running: 0, failed: 0, queued: 0 };
  for (const p of points) counts[p.state]++;
  const slurmJobs = [...new Set([...live.keys()].map((e) => e.split('_')[0]))];
  return { experiment: exp.name, expDir, runPid: await lockHolder(expDir), points, counts, slurmJobs, slurmNote };
}

export function formatStatus(s: SweepStatus): string[] {
  const lines = [
    `${s.experiment} (${s.expDir}): ${s.points.length} points: ${s.counts.done} done, ${s.counts.running} running, ${s.counts.failed} failed, ${s.counts.queued} queued`,
    s.runPid !== null ? `a run is in progress (process ${s.runPid})` : 'no mergelab run in progress',
  ];
  if (s.slurmJobs.length) lines.push(`Slurm jobs queued or running: ${s.slurmJobs.join(', ')}`);
  if (s.slurmNote) lines.push(`Slurm: ${s.slurmNote}`);
  for (const state of ['running', 'failed', 'queued'] as const) {
    const ps = s.points.filter((p) => p.state === state);
    if (ps.length === 0) continue;
    lines.push(`${state}:`);
    for (const p of ps) {
      const [first, ...rest] = p.detail.split('\n');
      lines.push(`  ${p.point}: ${first}`);
      if (state === 'failed') for (const l of rest.slice(-5)) lines.push(`      ${l}`);
    }
  }
  return lines;
}
