import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../../../util/atomic.js';
import { UserError } from '../../../util/errors.js';
import type { ExecutionContext, ExecutionEnd, Executor } from '../../executor.js';
import type { ExecutorConfig } from '../../executorConfig.js';
import { CPU_TASK, kindDepthGroups, type WorkNode } from '../../graph.js';
import type { Scheduler } from '../../scheduler.js';
import { taskDone } from '../../tasks.js';
import { SlurmCommandError, slurmClient, type SlurmClient } from './commands.js';
import { LIVE_STATES, elementId, jobEnds, type ElementId, type JobEnd, type QueueEntry } from './parse.js';
import { arraySpec, batchScript, resourceFlags } from './script.js';
import { JobStore, type Submission } from './store.js';

/**
 * The Slurm executor. The graph's unfinished tasks go to Slurm at once, as one job array per kind
 * of task and depth in the graph (merge-0, merge-1, eval-0, eval-2, ...), each array held back by
 * `--dependency=afterok` on the arrays it needs. Each element runs `mergelab task EXPDIR --id ID`
 * against the shared cache. mergelab then follows the elements with squeue (and, once one has
 * left the queue, scontrol and the cache): a task is done when its result is in the cache; a
 * failed one is resubmitted up to `retries` times, then recorded with its log's tail and
 * everything downstream of it cancelled.
 *
 * Slurm never runs a job whose afterok dependency failed, even after a resubmission. So after a
 * failure or a retry, every array still waiting gets its dependency rewritten to the elements its
 * tasks still need, wherever they now run.
 *
 * What was submitted is in reports/EXP/slurm/jobs.json (store.ts): a mergelab killed or
 * interrupted can leave the jobs running, and the next `mergelab run` re-attaches to them.
 */

export type InterruptChoice = 'cancel' | 'leave';
/** What to do with the jobs when the run is interrupted: fixed, or asked (given how many tasks are queued or running). */
export type InterruptPolicy = InterruptChoice | ((liveTasks: number, jobs: string[]) => Promise<InterruptChoice>);

export interface SlurmOptions {
  config: ExecutorConfig;
  expDir: string;
  experiment: string;
  /** The experiment file as the user named it (for how to re-attach). */
  experimentFile: string;
  backend: string;
  onInterrupt: InterruptPolicy;
  client?: SlurmClient;
}

/** Slurm's default MaxArraySize is 1001: indices 0-1000. */
const MAX_ARRAY = 1000;
const LOG_TAIL_LINES = 20;
const MAX_FAILED_POLLS = 10;

interface Tracked {
  sub: Submission;
  index: number;
  element: ElementId;
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm' as const;
  private readonly client: SlurmClient;
  private store: JobStore | null = null;
  /** The current element of every task submitted and not yet settled. */
  private readonly tracked = new Map<string, Tracked>();

  constructor(private readonly opts: SlurmOptions) {
    this.client = opts.client ?? slurmClient;
  }

  private async loadStore(): Promise<JobStore> {
    this.store ??= await JobStore.load(this.opts.expDir, this.opts.experiment);
    return this.store;
  }

  async busy(): Promise<string | null> {
    const store = await this.loadStore();
    await this.findUnrecorded(store);
    const live = await this.client.queue(store.submissions.map((s) => s.name));
    if (live.length === 0) return null;
    const jobs = [...new Set(live.map((e) => e.element.split('_')[0]))];
    return `${live.length} task(s) of this experiment in Slurm jobs ${jobs.join(', ')} are queued or running`;
  }

  /** Submissions written before sbatch but without a job id (mergelab died in between): find them by name. */
  private async findUnrecorded(store: JobStore): Promise<void> {
    const missing = store.submissions.filter((s) => !s.jobId);
    if (missing.length === 0) return;
    const all = await this.client.show('job');
    const lost: Submission[] = [];
    for (const sub of missing) {
      const rec = all.find((r) => r.JobName === sub.name);
      if (rec) await store.update(sub, { jobId: rec.ArrayJobId ?? rec.JobId });
      else lost.push(sub);
    }
    if (lost.length) await store.drop(lost);
  }

  async run(s: Scheduler, given: ExecutionContext): Promise<ExecutionEnd> {
    // The jobs are on the cluster: a first Ctrl-C (drain) already asks what to do with them.
    const stops = [given.signal, given.drain].filter((x): x is AbortSignal => x !== undefined);
    const ctx: ExecutionContext = { ...given, signal: stops.length ? AbortSignal.any(stops) : undefined };
    const store = await this.loadStore();
    await this.findUnrecorded(store);
    const cfg = this.opts.config;
    const latest = store.latest();
    const attempts = store.attempts();
    const live = new Map((await this.client.queue(store.submissions.map((x) => x.name))).map((e) => [e.element, e]));

    // Re-attach to what is still queued or running; settle what finished while nobody watched.
    const toSubmit: WorkNode[] = [];
    let attached = 0;
    let failedAtStart = false;
    const ends = new Map<string, Map<ElementId, JobEnd>>();
    for (const node of s.graph.work.values()) {
      const last = latest.get(node.id);
      if (last?.element && live.has(last.element)) {
        this.tracked.set(node.id, { sub: last.sub, index: last.index, element: last.element });
        attached++;
      }
    }
    for (const node of s.graph.work.values()) {
      // A failure settled below may have cut this node off already.
      if (s.state(node.id) !== 'waiting') continue;
      const t = this.tracked.get(node.id);
      const last = latest.get(node.id);
      if (t) this.noteQueueState(s, node.id, live.get(t.element)!);
      else if (await taskDone(node.task)) await s.settle(node.id, { ok: true, seconds: 0, alreadyDone: false });
      else if (last?.element && (attempts.get(node.id) ?? 0) > cfg.retries) {
        await this.failFinally(s, node, await this.describeEnd(last.sub, last.index, await this.endOf({ ...last, element: last.element }, ends)), ctx);
        failedAtStart = true;
      } else toSubmit.push(node);
    }
    if (attached) ctx.log(`slurm: re-attached to ${attached} task(s) still queued or running in jobs ${[...new Set([...this.tracked.values()].map((t) => t.sub.jobId))].join(', ')}`);
    if (ctx.signal?.aborted) return await this.interrupt();
    const pending = toSubmit.filter((n) => s.state(n.id) === 'waiting');
    await store.publishTasks(new Map([...s.graph.work.values()].map((n) => [n.id, n.task])), this.opts.backend);
    await this.submitNew(s, pending, ctx);
    if (attached || failedAtStart) await this.refreshDependencies(s);

    let failedPolls = 0;
    while (s.unsettled > 0) {
      if (this.tracked.size === 0) throw new Error(`internal: ${s.unsettled} task(s) unsettled but none in Slurm`);
      if (ctx.signal?.aborted) return await this.interrupt();
      await sleep(cfg.pollSeconds * 1000, ctx.signal);
      if (ctx.signal?.aborted) return await this.interrupt();
      try {
        await this.poll(s, ctx);
        failedPolls = 0;
      } catch (e) {
        // Ctrl-C reaches the squeue or scontrol of the moment too.
        if (ctx.signal?.aborted) return await this.interrupt();
        if (!(e instanceof SlurmCommandError)) throw e;
        // A busy controller times out now and then; the jobs are unaffected, so ask again.
        if (++failedPolls < MAX_FAILED_POLLS) {
          ctx.log(`slurm: ${e.message.split('\n')[0]}; asking again (${failedPolls} of ${MAX_FAILED_POLLS - 1})`);
          continue;
        }
        throw new UserError(`--executor slurm: ${e.message} (asked ${MAX_FAILED_POLLS} times; the jobs were left as they are, \`mergelab run ${this.opts.experimentFile}\` re-attaches to them)`);
      }
    }
    await store.finish();
    return { interrupted: false };
  }

  private noteQueueState(s: Scheduler, id: string, q: QueueEntry): void {
    const t = this.tracked.get(id)!;
    if (q.state === 'PENDING') s.markWaiting(id);
    else s.markRunning(id, `job ${t.element}${q.node ? ` on ${q.node}` : ''}`);
  }

  /** Submit nodes as arrays per kind and depth, shallowest first, each after the arrays it needs. */
  private async submitNew(s: Scheduler, nodes: WorkNode[], ctx: ExecutionContext): Promise<void> {
    if (nodes.length === 0) return;
    const submittedNow: Submission[] = [];
    try {
      for (const { group, nodes: members } of kindDepthGroups(s.graph, nodes)) {
        for (let i = 0; i < members.length; i += MAX_ARRAY) {
          const chunk = members.slice(i, i + MAX_ARRAY);
          // Within this submission round, whole arrays are named; an element already in Slurm is named alone.
          const refs = new Set<string>();
          for (const n of chunk) {
            for (const d of n.deps) {
              if (s.state(d) === 'done') continue;
              const t = this.tracked.get(d)!;
              refs.add(submittedNow.includes(t.sub) ? t.sub.jobId! : t.element);
            }
          }
          const sub = await this.submit(group, chunk, chunk.map((_, k) => k), refs.size ? `afterok:${[...refs].join(':')}` : '', null);
          submittedNow.push(sub);
          ctx.log(`slurm: submitted ${group} (${chunk.length} task${chunk.length === 1 ? '' : 's'}) as job array ${sub.jobId}${refs.size ? ` after ${[...refs].join(', ')}` : ''}`);
        }
      }
    } catch (e) {
      // Half a sweep in Slurm that nobody follows would run for nothing: take it back.
      await this.client.cancel(submittedNow.map((x) => x.jobId!)).catch(() => undefined);
      await this.store!.drop(submittedNow);
      if (e instanceof SlurmCommandError) throw new UserError(`--executor slurm: Slurm refused a job array of ${this.opts.experiment}: ${e.stderr.trim()} (check the executor settings in ${this.opts.experimentFile})`, { field: 'executor' });
      throw e;
    }
  }

  /** One sbatch: a new array (script null) or a resubmission of some elements of an existing one. */
  private async submit(group: string, nodes: WorkNode[], indices: number[], dependency: string, again: Submission | null): Promise<Submission> {
    const store = this.store!;
    const kind = nodes[0].kind;
    const token = randomBytes(4).toString('hex');
    const tasks = again ? again.tasks : nodes.map((n) => n.id);
    const script = again ? again.script : `${group}-${token}.sh`;
    const scriptText = batchScript({ experiment: this.opts.experiment, group, expDir: this.opts.expDir, tasks, setup: this.opts.config.jobs[kind].setup });
    if (!again) await writeFileAtomic(path.join(store.dir, script), scriptText);
    await fs.mkdir(store.logsDir(), { recursive: true });
    const sub: Submission = { token, name: `mergelab.${this.opts.experiment}.${group}.${token}`, kind, group, tasks, indices, script, jobId: null, dependency, submittedAt: new Date().toISOString() };
    // Written before sbatch runs: a mergelab killed in between finds the job by its name.
    await store.add(sub);
    const resources = nodes.reduce((r, n) => ({ ...r, cpus: Math.max(r.cpus, n.resources.cpus), gpus: Math.max(r.gpus, n.resources.gpus), diskBytes: Math.max(r.diskBytes, n.resources.diskBytes) }), CPU_TASK);
    const args = [
      `--job-name=${sub.name}`,
      `--array=${arraySpec(indices)}`,
      `--output=${path.join(store.logsDir(), `${group}-%A_%a.log`)}`,
      `--chdir=${this.opts.expDir}`,
      // Keep a job whose dependency failed waiting (some clusters cancel it): mergelab rewrites or cancels it.
      '--kill-on-invalid-dep=no',
      ...(dependency ? [`--dependency=${dependency}`] : []),
      ...resourceFlags(this.opts.config.jobs[kind], resources),
    ];
    let jobId: string;
    try {
      jobId = await this.client.sbatch(args, scriptText);
    } catch (e) {
      await store.drop([sub]);
      throw e;
    }
    await store.update(sub, { jobId });
    for (const i of indices) this.tracked.set(tasks[i], { sub, index: i, element: elementId(jobId, i) });
    return sub;
  }

  private async poll(s: Scheduler, ctx: ExecutionContext): Promise<void> {
    const store = this.store!;
    const live = new Map((await this.client.queue(store.submissions.map((x) => x.name))).map((e) => [e.element, e]));
    const ended: string[] = [];
    for (const [id, t] of this.tracked) {
      const q = live.get(t.element);
      if (q && LIVE_STATES.has(q.state)) this.noteQueueState(s, id, q);
      else ended.push(id);
    }
    if (ended.length === 0) return ctx.changed();

    const ends = new Map<string, Map<ElementId, JobEnd>>();
    const attempts = store.attempts();
    const retry = new Map<Submission, number[]>();
    let cutAny = false;
    for (const id of ended) {
      const t = this.tracked.get(id)!;
      const node = s.graph.work.get(id)!;
      if (await taskDone(node.task)) {
        this.tracked.delete(id);
        await s.settle(id, { ok: true, seconds: 0, alreadyDone: false });
        continue;
      }
      const why = await this.describeEnd(t.sub, t.index, await this.endOf(t, ends));
      this.tracked.delete(id);
      const n = attempts.get(id) ?? 1;
      if (n <= this.opts.config.retries) {
        ctx.log(`slurm: ${node.label}: attempt ${n} of ${this.opts.config.retries + 1} failed (${why.split('\n')[0]}); resubmitting`);
        s.markWaiting(id);
        retry.set(t.sub, [...(retry.get(t.sub) ?? []), t.index]);
        continue;
      }
      await this.failFinally(s, node, why, ctx);
      cutAny = true;
    }
    for (const [sub, indices] of retry) {
      const nodes = indices.map((i) => s.graph.work.get(sub.tasks[i])!);
      const refs = [...new Set(nodes.flatMap((n) => n.deps.filter((d) => s.state(d) !== 'done').map((d) => this.tracked.get(d)!.element)))];
      try {
        const again = await this.submit(sub.group, nodes, indices, refs.length ? `afterok:${refs.join(':')}` : '', sub);
        ctx.log(`slurm: resubmitted ${indices.length} task(s) of ${sub.group} as job array ${again.jobId}`);
      } catch (e) {
        if (!(e instanceof SlurmCommandError)) throw e;
        for (const n of nodes) await this.failFinally(s, n, `Slurm refused its resubmission: ${e.stderr.trim()}`, ctx);
        cutAny = true;
      }
    }
    if (retry.size || cutAny) await this.refreshDependencies(s);
    ctx.changed();
  }

  /** What Slurm still says of an element that left the queue (asked once per array and poll, kept in `ends`). */
  private async endOf(t: Tracked, ends: Map<string, Map<ElementId, JobEnd>>): Promise<JobEnd | null> {
    const job = t.sub.jobId!;
    if (!ends.has(job)) ends.set(job, jobEnds(await this.client.show('job', job)));
    return ends.get(job)!.get(t.element) ?? null;
  }

  /** The node failed for good: settle it, and cancel the queued elements of everything it cut off. */
  private async failFinally(s: Scheduler, node: WorkNode, why: string, ctx: ExecutionContext): Promise<void> {
    const cut = await s.settle(node.id, { ok: false, error: why });
    const cancel = cut.flatMap((c) => {
      const ct = this.tracked.get(c.id);
      this.tracked.delete(c.id);
      return ct ? [ct.element] : [];
    });
    if (cancel.length) {
      await this.client.cancel(cancel);
      ctx.log(`slurm: cancelled ${cancel.length} queued task(s) that needed ${node.label}`);
    }
  }

  /** Point every array still waiting at the elements its pending tasks need now. */
  private async refreshDependencies(s: Scheduler): Promise<void> {
    const bySub = new Map<Submission, string[]>();
    for (const [id, t] of this.tracked) if (s.state(id) === 'waiting') bySub.set(t.sub, [...(bySub.get(t.sub) ?? []), id]);
    for (const [sub, ids] of bySub) {
      const refs = new Set<string>();
      for (const id of ids) for (const d of s.graph.work.get(id)!.deps) if (s.state(d) !== 'done' && this.tracked.has(d)) refs.add(this.tracked.get(d)!.element);
      const dependency = refs.size ? `afterok:${[...refs].sort().join(':')}` : '';
      if (dependency === sub.dependency) continue;
      try {
        await this.client.setDependency(sub.jobId!, dependency);
      } catch (e) {
        // The array left the queue meanwhile: nothing to rewrite.
        if (e instanceof SlurmCommandError && /already finished|no longer pending|Invalid job id/i.test(e.stderr)) continue;
        throw e;
      }
      await this.store!.update(sub, { dependency });
    }
  }

  /** Why an element ended without a result: Slurm's state (while it remembers the job) and the log's tail. */
  private async describeEnd(sub: Submission, index: number, end: JobEnd | null): Promise<string> {
    const element = elementId(sub.jobId!, index);
    const log = end?.stdout && end.stdout !== '(null)' ? end.stdout : this.store!.logFile(sub, index);
    let head: string;
    if (!end) head = `Slurm job ${element} ended (Slurm no longer lists it)`;
    else if (end.state === 'COMPLETED') head = `Slurm job ${element} completed on ${end.node} but left no result in the cache (does that node see ${this.opts.expDir}?)`;
    else head = `Slurm job ${element} ${end.state}${end.exitCode && end.exitCode !== '0:0' ? ` (exit code ${end.exitCode})` : ''}${end.reason && end.reason !== 'None' ? ` [${end.reason}]` : ''}${end.node && end.node !== '(null)' ? ` on ${end.node}` : ''}`;
    const tail = await logTail(log, LOG_TAIL_LINES);
    return `${head}; log ${path.relative(process.cwd(), log) || log}${tail === null ? ' is missing' : tail ? ` ends:\n${tail}` : ' is empty'}`;
  }

  private async interrupt(): Promise<ExecutionEnd> {
    const jobs = [...new Set([...this.tracked.values()].map((t) => t.sub.jobId!))];
    if (jobs.length === 0) return { interrupted: true, note: 'interrupted; no Slurm job of this run is queued or running' };
    const p = this.opts.onInterrupt;
    const choice = typeof p === 'function' ? await p(this.tracked.size, jobs) : p;
    if (choice === 'cancel') {
      await this.client.cancel(jobs);
      await this.store!.finish();
      return { interrupted: true, note: `interrupted: cancelled Slurm jobs ${jobs.join(', ')} (scancel); run again to resume from the cache` };
    }
    return {
      interrupted: true,
      note: `interrupted: ${this.tracked.size} task(s) left queued or running in Slurm jobs ${jobs.join(', ')}; \`mergelab run ${this.opts.experimentFile} --executor slurm\` re-attaches to them, \`mergelab status ${this.opts.experimentFile}\` shows where they are`,
    };
  }
}

async function logTail(file: string, lines: number): Promise<string | null> {
  let text: string;
  try {
    const h = await fs.open(file, 'r');
    try {
      const { size } = await h.stat();
      const n = Math.min(size, 16_384);
      const buf = Buffer.alloc(n);
      await h.read(buf, 0, n, size - n);
      text = buf.toString('utf8');
    } finally {
      await h.close();
    }
  } catch {
    return null;
  }
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
