import { describe, expect, it } from 'vitest';
import { LocalExecutor, lendIdle, type TaskRunner } from '../../src/sweep/executors/local.js';
import type { RecordNode, TaskGraph, WorkKind, WorkNode } from '../../src/sweep/graph.js';
import type { PointNode } from '../../src/sweep/plan.js';
import { Scheduler, type Outcome } from '../../src/sweep/scheduler.js';
import { DiskGate } from '../../src/sweep/diskGate.js';
import { PortPool } from '../../src/sweep/ports.js';
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
      resources: { cpus: 1, gpus: gpus ?? 0, evals: 0, ports: 0, diskBytes: 0 },
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
    const devicesSeen: Array<Array<number | string>> = [];
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

describe('evaluation slots and ports', () => {
  /** `n` evaluations by a started server (an evaluation slot and a port each) and `m` merges. */
  function servedGraph(n: number, m: number): TaskGraph {
    const g = graph([...Array.from({ length: n }, (_, i): [string, WorkKind, string[], number?] => [`e${i}`, 'eval', [], 1]), ...Array.from({ length: m }, (_, i): [string, WorkKind, string[], number?] => [`m${i}`, 'merge', []])], []);
    for (const node of g.work.values()) if (node.kind === 'eval') node.resources = { cpus: 0, gpus: 1, evals: 1, ports: 1, diskBytes: 0 };
    g.records.push(...[...g.work.keys()].map((id, index) => ({ id: `record:${id}`, kind: 'record' as const, point: { id, index } as PointNode, deps: [id] })));
    for (const r of g.records) g.dependents.get(r.deps[0])!.push(r.id);
    return g;
  }

  it('a served evaluation takes an evaluation slot, its GPUs and a port of its own; merges run beside it', async () => {
    const s = new Scheduler(servedGraph(6, 4), recorder().listener);
    let evals = 0;
    let merges = 0;
    const peak = { evals: 0, merges: 0, both: 0 };
    const live = new Map<number, string>();
    const clashes: string[] = [];
    const runner: TaskRunner = {
      async run(task, { gpus, port }) {
        const isEval = gpus.length > 0;
        if (isEval) {
          evals++;
          if (port === undefined || live.has(port)) clashes.push(`${task.key}: port ${port}`);
          else live.set(port, task.key);
        } else merges++;
        peak.evals = Math.max(peak.evals, evals);
        peak.merges = Math.max(peak.merges, merges);
        peak.both = Math.max(peak.both, Math.min(evals, merges));
        await new Promise((r) => setTimeout(r, 30));
        if (isEval) {
          evals--;
          live.delete(port!);
        } else merges--;
        return { seconds: 0.03, alreadyDone: false };
      },
      async close() {},
    };
    const end = await new LocalExecutor({ jobs: 2, gpus: [0, 1], evals: 2, backend: 'auto', runner }).run(s);
    expect(end.interrupted).toBe(false);
    expect(s.unrecorded()).toEqual([]);
    // Never more servers than evaluation slots (two GPUs, one each), and two merges beside them.
    expect(peak.evals).toBe(2);
    expect(peak.merges).toBe(2);
    expect(peak.both).toBe(2);
    expect(clashes).toEqual([]);
  });

  it('idle CPU slots are lent to built-in evaluations only: a served one holds no CPU slot and is lent none', async () => {
    // jobs 2: the built-in evaluation b holds one CPU slot, the served x an evaluation slot; the
    // other CPU slot idles throughout.
    const g = graph(
      [
        ['x', 'eval', [], 1],
        ['b', 'eval', []],
      ],
      [
        ['px', ['x']],
        ['pb', ['b']],
      ],
    );
    g.work.get('x')!.resources = { cpus: 0, gpus: 1, evals: 1, ports: 0, diskBytes: 0 };
    const s = new Scheduler(g, recorder().listener);
    const calls: string[] = [];
    const runner: TaskRunner = {
      async run(task) {
        await new Promise((r) => setTimeout(r, task.key === 'x' ? 150 : 60));
        return { seconds: 0, alreadyDone: false };
      },
      setThreads(task, threads) {
        calls.push(`${task.key}:${threads}`);
      },
      async close() {},
    };
    const end = await new LocalExecutor({ jobs: 2, gpus: [0], evals: 1, backend: 'auto', runner }).run(s);
    expect(end.interrupted).toBe(false);
    expect(calls).toEqual(['b:2']);
  });

  it('a port pool never hands out a port a running task holds, even when the OS offers it again', async () => {
    const offers = [9001, 9001, 9002, 9001, 9003];
    const pool = new PortPool('127.0.0.1', async () => offers.shift()!);
    const a = await pool.take();
    const b = await pool.take();
    expect([a, b]).toEqual([9001, 9002]);
    pool.give(a);
    expect(await pool.take()).toBe(9001);
    expect(pool.inUse).toBe(2);
  });
});

describe('max_models_on_disk', () => {
  /**
   * The seed's shape: stage-1 merges `s{i}` each read by `k` stage-2 merges `t{i}{j}`; every
   * merged model is evaluated (`e...`). Folders are released as the runner releases them: when
   * every node that reads them has settled.
   */
  function chains(roots: number, k: number): TaskGraph {
    const work: Array<[string, WorkKind, string[], number?]> = [];
    const points: Array<[string, string[]]> = [];
    for (let i = 0; i < roots; i++) {
      work.push([`s${i}`, 'merge', []], [`es${i}`, 'eval', [`s${i}`]]);
      points.push([`p${i}`, [`s${i}`, `es${i}`]]);
      for (let j = 0; j < k; j++) {
        work.push([`t${i}${j}`, 'merge', [`s${i}`]], [`et${i}${j}`, 'eval', [`t${i}${j}`]]);
        points.push([`p${i}${j}`, [`s${i}`, `t${i}${j}`, `et${i}${j}`]]);
      }
    }
    const g = graph(work, points);
    for (const n of g.work.values()) {
      if (n.kind === 'merge') n.writes = n.id;
      n.reads = n.deps;
      for (const d of n.deps) g.readers.set(d, (g.readers.get(d) ?? 0) + 1);
    }
    return g;
  }

  async function run(g: TaskGraph, limit: number, jobs: number) {
    const gate = new DiskGate(g, limit);
    const onDisk = new Set<string>();
    let peak = 0;
    let concurrentEvalAndMerge = false;
    const readers = new Map(g.readers);
    const listener = {
      async settled(n: WorkNode) {
        if (n.writes && !readers.get(n.writes)) {
          onDisk.delete(n.writes);
          gate.released(n.writes);
        }
        for (const k of n.reads) {
          readers.set(k, readers.get(k)! - 1);
          if (readers.get(k) === 0) {
            onDisk.delete(k);
            gate.released(k);
          }
        }
      },
      record() {},
    };
    const s = new Scheduler(g, listener, gate);
    const runner: TaskRunner = {
      async run(task) {
        const n = g.work.get(task.key)!;
        if (n.kind === 'merge') onDisk.add(n.id);
        peak = Math.max(peak, onDisk.size);
        if ([...g.work.values()].some((x) => x.kind === 'eval' && s.state(x.id) === 'running') && [...g.work.values()].some((x) => x.kind === 'merge' && s.state(x.id) === 'running')) concurrentEvalAndMerge = true;
        await new Promise((r) => setTimeout(r, 5));
        return { seconds: 0, alreadyDone: false };
      },
      async close() {},
    };
    const end = await new LocalExecutor({ jobs, backend: 'auto', runner }).run(s);
    return { end, peak, unrecorded: s.unrecorded().length, concurrentEvalAndMerge, longest: gate.longestChain };
  }

  it('never keeps more merged checkpoints than the bound, finishes every chain, and overlaps merges with evaluations', async () => {
    for (const [limit, jobs] of [[2, 1], [2, 3], [3, 3], [4, 2]]) {
      const r = await run(chains(3, 3), limit, jobs);
      expect(r.longest).toBe(2);
      expect(r.end.interrupted, `limit ${limit} jobs ${jobs}`).toBe(false);
      expect(r.unrecorded, `limit ${limit} jobs ${jobs}`).toBe(0);
      expect(r.peak, `limit ${limit} jobs ${jobs}`).toBeLessThanOrEqual(limit);
      if (jobs > 1) expect(r.concurrentEvalAndMerge).toBe(true);
    }
    // Unbounded, the same graph keeps more at once: the bound is what held it.
    const free = await run(chains(3, 3), 100, 3);
    expect(free.peak).toBeGreaterThan(4);
  });

  it('admits a merge only when the places left cover its chain', () => {
    const g = chains(2, 1);
    for (const n of g.work.values()) n.reads = [];
    const gate = new DiskGate(g, 2);
    const [s0, s1, t0] = ['s0', 's1', 't00'].map((id) => g.work.get(id)!);
    expect(gate.admits(s0)).toBe(true);
    gate.took(s0);
    // s1 would leave no place for s0's second stage.
    expect(gate.admits(s1)).toBe(false);
    expect(gate.admits(t0)).toBe(true);
    gate.took(t0);
    gate.released('t00');
    gate.released('s0');
    expect(gate.admits(s1)).toBe(true);
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
