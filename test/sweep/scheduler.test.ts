import { describe, expect, it } from 'vitest';
import { LocalExecutor, lendIdle, type TaskRunner } from '../../src/sweep/executors/local.js';
import type { RecordNode, TaskGraph, WorkKind, WorkNode } from '../../src/sweep/graph.js';
import type { PointNode } from '../../src/sweep/plan.js';
import { Scheduler, type Outcome } from '../../src/sweep/scheduler.js';
import type { Task } from '../../src/sweep/tasks.js';

/** A hand-made graph: `work` as [id, kind, deps, gpus], `points` as [id, deps]. */
function graph(work: Array<[string, WorkKind, string[], number?]>, points: Array<[string, string[]]>): TaskGraph {
  const nodes = new Map<string, WorkNode>();
  work.forEach(([id, kind, deps, gpus], i) =>
    nodes.set(id, {
      id,
      kind,
      task: { type: 'eval', key: id, cacheRoot: '/nowhere', modelDir: '/nowhere', eval: { suites: ['lm'], limit: 1, batchSize: 1, samples: 0 } } as Task,
      deps,
      resources: { cpus: 1, gpus: gpus ?? 0, diskBytes: 0 },
      order: i,
      label: id,
      what: `${kind} ${id}`,
      reads: [],
      writes: null,
    }),
  );
  const records: RecordNode[] = points.map(([id, deps], index) => ({ id: `record:${id}`, kind: 'record', point: { id, index } as PointNode, deps }));
  const dependents = new Map<string, string[]>([...nodes.keys()].map((k) => [k, []]));
  for (const n of nodes.values()) for (const d of n.deps) dependents.get(d)!.push(n.id);
  for (const r of records) for (const d of r.deps) dependents.get(d)!.push(r.id);
  return { work: nodes, records, dependents, readers: new Map() };
}

function recorder() {
  const recorded: Array<[string, string | null]> = [];
  const settled: string[] = [];
  return {
    recorded,
    settled,
    listener: {
      async settled(n: WorkNode) {
        settled.push(n.id);
      },
      record(p: PointNode, failure: string | null) {
        recorded.push([p.id, failure]);
      },
    },
  };
}

const ok: Outcome = { ok: true, seconds: 1, alreadyDone: false };

describe('Scheduler', () => {
  it('offers evaluations before merges, then by the first point that needs them', () => {
    const g = graph(
      [
        ['m1', 'merge', []],
        ['m2', 'merge', ['m1']],
        ['e0', 'eval', []],
        ['e1', 'eval', ['m1']],
      ],
      [['p', ['m1', 'm2', 'e1']]],
    );
    const s = new Scheduler(g, recorder().listener);
    expect(s.ready().map((n) => n.id)).toEqual(['e0', 'm1']);
  });

  it('a failure cuts off everything downstream, and each point is recorded with the first failed part', async () => {
    const g = graph(
      [
        ['m1', 'merge', []],
        ['m2', 'merge', ['m1']],
        ['e2', 'eval', ['m2']],
        ['e1', 'eval', ['m1']],
        ['e0', 'eval', []],
      ],
      [
        ['chained', ['m1', 'm2', 'e2']],
        ['alone', ['m1', 'e1']],
        ['ref', ['e0']],
      ],
    );
    const r = recorder();
    const s = new Scheduler(g, r.listener);
    await s.settle('e0', ok);
    expect(r.recorded).toEqual([['ref', null]]);
    s.markRunning('m1', 'job 7_0');
    expect(s.location('m1')).toBe('job 7_0');
    const cut = await s.settle('m1', { ok: false, error: 'k = 0' });
    expect(cut.map((n) => n.id).sort()).toEqual(['e1', 'e2', 'm2']);
    expect(s.unsettled).toBe(0);
    expect(r.recorded.slice(1)).toEqual([
      ['chained', 'merge m1 failed: k = 0'],
      ['alone', 'merge m1 failed: k = 0'],
    ]);
    // The listener hears of the cut-off nodes too (they release what they would have read).
    expect(r.settled.sort()).toEqual(['e0', 'e1', 'e2', 'm1', 'm2']);
    expect(s.unrecorded()).toEqual([]);
  });

  it('records a point once, as soon as all its parts are done', async () => {
    const g = graph(
      [
        ['m', 'merge', []],
        ['e', 'eval', ['m']],
        ['d', 'pointdiag', ['m']],
      ],
      [['p', ['m', 'e', 'd']]],
    );
    const r = recorder();
    const s = new Scheduler(g, r.listener);
    await s.settle('m', ok);
    await s.settle('e', ok);
    expect(r.recorded).toEqual([]);
    await s.settle('d', ok);
    await s.settle('d', ok);
    expect(r.recorded).toEqual([['p', null]]);
  });
});

describe('LocalExecutor slots', () => {
  /** A runner that takes `ms` per task and notes how many GPU tasks and tasks in all run at once. */
  function timedRunner(ms: number) {
    let running = 0;
    let gpuRunning = 0;
    const peak = { all: 0, gpu: 0 };
    const devicesSeen: number[][] = [];
    const runner: TaskRunner = {
      async run(_task, { gpus }) {
        running++;
        if (gpus.length) gpuRunning++;
        devicesSeen.push(gpus);
        peak.all = Math.max(peak.all, running);
        peak.gpu = Math.max(peak.gpu, gpuRunning);
        await new Promise((r) => setTimeout(r, ms));
        running--;
        if (gpus.length) gpuRunning--;
        return { seconds: ms / 1000, alreadyDone: false };
      },
      async close() {},
    };
    return { runner, peak, devicesSeen };
  }

  it('never runs more GPU tasks than GPUs, while CPU tasks use the other slots', async () => {
    const work: Array<[string, WorkKind, string[], number?]> = [];
    for (let i = 0; i < 8; i++) work.push([`e${i}`, 'eval', [], 1]);
    for (let i = 0; i < 4; i++) work.push([`m${i}`, 'merge', []]);
    const g = graph(work, work.map(([id]) => [id, [id]]));
    const r = recorder();
    const s = new Scheduler(g, r.listener);
    const t = timedRunner(30);
    const end = await new LocalExecutor({ jobs: 5, gpus: [2, 5], backend: 'auto', runner: t.runner }).run(s);
    expect(end.interrupted).toBe(false);
    expect(r.recorded.length).toBe(12);
    expect(t.peak.gpu).toBe(2);
    // The merges did not wait for the evaluations: five slots were busy at once.
    expect(t.peak.all).toBe(5);
    // Each GPU task got one of the two devices.
    expect(t.devicesSeen.filter((d) => d.length).every((d) => d.length === 1 && (d[0] === 2 || d[0] === 5))).toBe(true);
    expect(new Set(t.devicesSeen.flat())).toEqual(new Set([2, 5]));
  });

  it('lends idle CPU slots to running evaluations and takes them back when a node can start', async () => {
    // jobs 3: e0 runs long; e1 ends early (a slot idles: lent to e0); m1 ends next and readies
    // e2 and e3, which take both free slots (e0 back to 1); as they end, e0 gets the first slot
    // freed (it started first), then both.
    const ms: Record<string, number> = { e0: 400, e1: 20, m1: 120, e2: 60, e3: 60 };
    const g = graph(
      [
        ['e0', 'eval', []],
        ['e1', 'eval', []],
        ['m1', 'merge', []],
        ['e2', 'eval', ['m1']],
        ['e3', 'eval', ['m1']],
      ],
      [
        ['p0', ['e0']],
        ['p1', ['e1']],
        ['p2', ['m1', 'e2']],
        ['p3', ['m1', 'e3']],
      ],
    );
    const s = new Scheduler(g, recorder().listener);
    const calls: string[] = [];
    const runner: TaskRunner = {
      async run(task) {
        await new Promise((r) => setTimeout(r, ms[task.key]));
        return { seconds: 0, alreadyDone: false };
      },
      setThreads(task, threads) {
        calls.push(`${task.key}:${threads}`);
      },
      async close() {},
    };
    await new LocalExecutor({ jobs: 3, backend: 'auto', runner }).run(s);
    expect(calls.filter((c) => c.startsWith('e0:'))).toEqual(['e0:2', 'e0:1', 'e0:2', 'e0:3']);
    // A merge is never lent threads; e2 and e3 never had a spare slot.
    expect(calls.every((c) => c.startsWith('e0:'))).toBe(true);
  });

  it('shares idle slots evenly between running evaluations', () => {
    expect(lendIdle(0, 3)).toEqual([]);
    expect(lendIdle(2, 0)).toEqual([1, 1]);
    expect(lendIdle(1, 1)).toEqual([2]);
    expect(lendIdle(2, 3)).toEqual([3, 2]);
  });

  it('refuses up front a task that needs more GPUs than the machine has', async () => {
    const g = graph([['e', 'eval', [], 1]], [['p', ['e']]]);
    const s = new Scheduler(g, recorder().listener);
    await expect(new LocalExecutor({ jobs: 2, backend: 'auto', runner: timedRunner(1).runner }).run(s)).rejects.toThrow(/needs 1 GPU\(s\).*offers 0 GPU/);
  });

  it('an aborted run stops starting tasks and records nothing more', async () => {
    const work: Array<[string, WorkKind, string[], number?]> = [];
    for (let i = 0; i < 6; i++) work.push([`e${i}`, 'eval', []]);
    const g = graph(work, work.map(([id]) => [id, [id]]));
    const r = recorder();
    const s = new Scheduler(g, r.listener);
    const ac = new AbortController();
    const t = timedRunner(40);
    setTimeout(() => ac.abort(), 60);
    const end = await new LocalExecutor({ jobs: 2, backend: 'auto', runner: t.runner }).run(s, { signal: ac.signal, log() {}, changed() {} });
    expect(end.interrupted).toBe(true);
    expect(r.recorded.length).toBeGreaterThan(0);
    expect(r.recorded.length).toBeLessThan(6);
    expect(s.unrecorded().length).toBe(6 - r.recorded.length);
  });
});

describe('the Ctrl-C question of a Slurm run', () => {
  it('cancels only on yes; Enter or anything else leaves the jobs running', async () => {
    const { PassThrough } = await import('node:stream');
    const { askOnTerminal } = await import('../../src/sweep/interrupt.js');
    for (const [answer, choice] of [
      ['y', 'cancel'],
      ['yes', 'cancel'],
      ['', 'leave'],
      ['n', 'leave'],
      ['cancel', 'leave'],
    ] as const) {
      const input = new PassThrough();
      const output = new PassThrough();
      let asked = '';
      output.on('data', (d: Buffer) => (asked += d.toString()));
      const pending = askOnTerminal(input, output)(7, ['12', '13']);
      input.write(`${answer}\n`);
      expect(await pending).toBe(choice);
      expect(asked).toContain('7 task(s) are queued or running in Slurm jobs 12, 13. Cancel them (scancel)? [y/N]');
    }
  });
});
