import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, cli, failingExperiment, readJsonl, seedShapedExperiment, tempDir, tinyZoo, withoutTimings } from './helpers.js';
import { slurmUnavailable, startSlurm, type SlurmCluster } from './slurmCluster.js';

/**
 * `--executor slurm` against a real single-node Slurm (slurmCluster.ts) with two fake GPUs.
 * The sweep is the seed-shaped experiment at one density and one seed: 9 points, 6 merges,
 * 9 evaluations, 3 point diagnostics = 18 tasks. Its local run is the reference.
 */
const unavailable = await slurmUnavailable();
if (unavailable) console.warn(`slurm.test.ts skipped: ${unavailable}`);

const TASKS = 18;
const FAILING = failingExperiment('executor: {poll_seconds: 0.5, retries: 1}\n');

/** The experiment with an executor block (the name stays `small`, so records compare equal). */
function small(executor: string): string {
  return seedShapedExperiment('small', { densities: [0.5], seeds: [1], limit: 2 }) + `executor:\n${executor.replace(/^/gm, '  ')}\n`;
}

/** Task start/end times from the job logs of one kind (`mergelab task` writes both). */
async function intervals(expDir: string, kind: string): Promise<Array<{ task: string; start: number; end: number; gpus: string }>> {
  const dir = path.join(expDir, 'slurm', 'logs');
  const out: Array<{ task: string; start: number; end: number; gpus: string }> = [];
  for (const f of await fs.readdir(dir)) {
    if (!f.startsWith(`${kind}-`)) continue;
    const text = await fs.readFile(path.join(dir, f), 'utf8');
    const s = /mergelab task (\S+): start (\S+) .*gpus \[([^\]]*)\]/.exec(text);
    const e = /mergelab task \S+: end (\S+):/.exec(text);
    if (s && e) out.push({ task: s[1], start: Date.parse(s[2]), end: Date.parse(e[1]), gpus: s[3] });
  }
  return out;
}

function peakOverlap(xs: Array<{ start: number; end: number }>): number {
  const events = xs.flatMap((x) => [
    [x.start, 1],
    [x.end, -1],
  ]);
  // An end and a start at the same millisecond do not overlap.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let n = 0;
  let peak = 0;
  for (const [, d] of events) peak = Math.max(peak, (n += d));
  return peak;
}

describe.skipIf(!!unavailable)('mergelab run --executor slurm on a real single-node Slurm', () => {
  let cluster: SlurmCluster;
  let zoo: string;
  let work: string;
  let env: Record<string, string>;
  let reference: Array<Record<string, unknown>>;

  /** Slurm's own list of the array elements it ran for one experiment folder. */
  const elementsOf = async (expDir: string) => (await cluster.jobs()).filter((j) => j.WorkDir === expDir && j.JobName?.startsWith('mergelab.'));

  beforeAll(async () => {
    cluster = await startSlurm({ gpus: 2 });
    console.log(`test Slurm up in ${cluster.startSeconds.toFixed(2)} s (munged, slurmctld, slurmd; node idle)`);
    env = cluster.env;
    zoo = await tinyZoo();
    work = await tempDir('sweep-slurm');
    await fs.writeFile(path.join(work, 'local.yaml'), small('kind: local'));
    const r = await cli(['run', path.join(work, 'local.yaml'), '--zoo', zoo, '--reports', path.join(work, 'local'), '--jobs', '2', '--progress', 'none', '--no-report']);
    if (r.exitCode !== 0) throw new Error(r.all);
    reference = withoutTimings(await readJsonl(path.join(work, 'local', 'small', 'results.jsonl')));
  });

  afterAll(async () => {
    await cluster?.stop();
    // No daemon of the test cluster outlives it.
    if (cluster) {
      const left = await execa('pgrep', ['-f', cluster.dir], { reject: false });
      expect(left.stdout.trim()).toBe('');
    }
  });

  it('writes the records of the local run, as job arrays chained by afterok, never more than two evaluations on two GPUs', { timeout: 600_000 }, async () => {
    const file = path.join(work, 'gpu.yaml');
    await fs.writeFile(file, small('poll_seconds: 0.5\neval: {gres: "gpu:1"}'));
    const reports = path.join(work, 'gpu');
    const expDir = path.join(reports, 'small');
    // Slurm's own view while it runs: how many evaluation elements run at once, and whether one waited for a GPU.
    let peakRunning = 0;
    let waitedForGpu = false;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const q = await execa('squeue', ['-h', '-r', '-o', '%j|%T|%r'], { env, reject: false });
        const evals = q.stdout.split('\n').filter((l) => /^mergelab\.small\.eval-/.test(l));
        peakRunning = Math.max(peakRunning, evals.filter((l) => l.split('|')[1] === 'RUNNING').length);
        if (evals.some((l) => l.endsWith('|PENDING|Resources'))) waitedForGpu = true;
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    const r = await cli(['run', file, '--zoo', zoo, '--reports', reports, '--executor', 'slurm', '--progress', 'lines', '--no-report'], { env });
    watching = false;
    await watch;
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toMatch(/slurm: submitted merge-0 \(3 tasks\) as job array \d+\n/);
    expect(r.all).toMatch(/slurm: submitted merge-1 \(3 tasks\) as job array \d+ after \d+\n/);
    expect(r.all).toMatch(/slurm: submitted eval-2 \(3 tasks\) as job array \d+ after \d+\n/);
    expect(r.all).toMatch(/evaluations performed: 9\b/);
    expect(withoutTimings(await readJsonl(path.join(expDir, 'results.jsonl')))).toEqual(reference);

    // One element per task, each run once.
    const elements = await elementsOf(expDir);
    expect(elements.length).toBe(TASKS);
    expect(elements.every((e) => e.JobState === 'COMPLETED')).toBe(true);
    // The gres request reached Slurm, and at most two evaluations ran at once, each on its own GPU.
    const evals = await intervals(expDir, 'eval');
    expect(evals.length).toBe(9);
    const peak = peakOverlap(evals);
    console.log(`evaluations at once: ${peak} (task logs), ${peakRunning} (squeue); one waited for a GPU: ${waitedForGpu}`);
    expect(peak).toBeLessThanOrEqual(2);
    expect(peakRunning).toBeLessThanOrEqual(2);
    expect(Math.max(peak, peakRunning)).toBe(2);
    for (const a of evals) for (const b of evals) if (a !== b && a.start < b.end && b.start < a.end) expect(a.gpus).not.toBe(b.gpus);
    expect(new Set(evals.map((e) => e.gpus))).toEqual(new Set(['0', '1']));
    // Merges asked for no GPU and were not held to two: the limit is the GPUs'.
    expect((await intervals(expDir, 'merge')).every((m) => m.gpus === '')).toBe(true);
    // `mergelab task` runs one task by hand: done already, so it does nothing.
    const taskId = evals[0].task;
    const again = await cli(['task', expDir, '--id', taskId], { env });
    expect(again.exitCode, again.all).toBe(0);
    expect(again.all).toMatch(new RegExp(`mergelab task ${taskId}: end \\S+: already done`));
    // An unknown id is a mistake in the input: exit 1, as every command exits for one.
    const unknown = await cli(['task', expDir, '--id', 'eval:nope'], { env });
    expect(unknown.exitCode).toBe(1);
    expect(unknown.all).toMatch(/slurm\/tasks\.json: no task 'eval:nope'/);
    // The campaign is over: the next run starts a new one.
    await fs.access(path.join(expDir, 'slurm', 'last-jobs.json'));
    await expect(fs.access(path.join(expDir, 'slurm', 'jobs.json'))).rejects.toThrow();
    expect(await fs.readdir(path.join(expDir, 'cache', 'stages'))).toEqual([]);
  });

  it('retries a task that fails once, and the sweep ends complete', { timeout: 600_000 }, async () => {
    // The first merge and the first evaluation to start fail (a real non-zero exit of the job);
    // every later attempt runs. The arrays queued behind the failed merge are re-pointed at its retry.
    const fail = (kind: string) => `['if mkdir ${path.join(work, `flaky-${kind}`)} 2>/dev/null; then echo "injected failure of $MERGELAB_TASK_ID" >&2; exit 3; fi']`;
    const file = path.join(work, 'flaky.yaml');
    await fs.writeFile(file, small(`poll_seconds: 0.5\nretries: 1\nmerge:\n  setup: ${fail('merge')}\neval:\n  setup: ${fail('eval')}`));
    const reports = path.join(work, 'flaky');
    const expDir = path.join(reports, 'small');
    const r = await cli(['run', file, '--zoo', zoo, '--reports', reports, '--executor', 'slurm', '--progress', 'lines', '--no-report'], { env });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toMatch(/slurm: merge [^\n]*: attempt 1 of 2 failed \(Slurm job \d+_\d+ FAILED \(exit code 3:0\)/);
    expect(r.all).toMatch(/slurm: eval [^\n]*: attempt 1 of 2 failed \(Slurm job \d+_\d+ FAILED \(exit code 3:0\)/);
    expect(r.all).toMatch(/slurm: resubmitted 1 task\(s\) of merge-0 as job array \d+/);
    expect(r.all).toMatch(/slurm: resubmitted 1 task\(s\) of eval-\d as job array \d+/);
    expect(r.all).toMatch(/failed: 0\b/);
    expect(withoutTimings(await readJsonl(path.join(expDir, 'results.jsonl')))).toEqual(reference);
    const elements = await elementsOf(expDir);
    expect(elements.length).toBe(TASKS + 2);
    expect(elements.filter((e) => e.JobState === 'FAILED').length).toBe(2);
    const logs = await fs.readdir(path.join(expDir, 'slurm', 'logs'));
    const failedLogs = await Promise.all(logs.map((f) => fs.readFile(path.join(expDir, 'slurm', 'logs', f), 'utf8')));
    expect(failedLogs.filter((t) => t.includes('injected failure of ')).length).toBe(2);
  });

  it('records a task that always fails with its log tail, cancels what needed it and finishes the rest', { timeout: 600_000 }, async () => {
    const file = path.join(work, 'failing.yaml');
    await fs.writeFile(file, FAILING);
    const reports = path.join(work, 'failing');
    const expDir = path.join(reports, 'failing');
    const r = await cli(['run', file, '--zoo', zoo, '--reports', reports, '--executor', 'slurm', '--progress', 'lines', '--no-report'], { env });
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toMatch(/attempt 1 of 2 failed/);
    const rs = await readJsonl(path.join(expDir, 'results.jsonl'));
    expect(rs.map((x) => [x.point, x.status])).toEqual([
      ['ref base', 'ok'],
      ['ref math', 'ok'],
      ['ref chat', 'ok'],
      ['failing density=0.001', 'failed'],
      ['failing density=0.5', 'ok'],
    ]);
    const error = rs[3].error as string;
    expect(error).toMatch(/^merge of stage stage1 failed: Slurm job \d+_\d+ FAILED \(exit code 1:0\)/);
    // The log's tail carries the task's own error.
    expect(error).toMatch(/log \S+merge-0-\d+_\d+\.log ends:\n[\s\S]*keeps floor\(0\.001 \* 16\) = 0 elements/);
    // Two attempts of the failing merge; its evaluation was cancelled, never run.
    const elements = await elementsOf(expDir);
    expect(elements.filter((e) => e.JobState === 'FAILED').length).toBe(2);
    expect(elements.filter((e) => e.JobState === 'COMPLETED').length).toBe(5);

    const st = await cli(['status', file, '--zoo', zoo, '--reports', reports], { env });
    expect(st.exitCode, st.all).toBe(0);
    expect(st.all).toMatch(/5 points: 4 done, 0 running, 1 failed, 0 queued/);
    expect(st.all).toMatch(/failed:\n {2}failing density=0\.001: merge of stage stage1 failed: Slurm job \d+_\d+ FAILED/);
  });

  it('after kill -9 of mergelab, `mergelab run` re-attaches to the jobs and ends with the same records, no job submitted twice', { timeout: 600_000 }, async () => {
    // Evaluations wait at a gate the test opens once the second run has re-attached, so the kill
    // lands mid-sweep and the jobs are still there to re-attach to, however fast this machine is.
    const gate = path.join(work, 'killed-gate');
    const file = path.join(work, 'killed.yaml');
    await fs.writeFile(file, small(`poll_seconds: 0.5\neval:\n  setup: ['while [ ! -e ${gate} ]; do sleep 0.2; done']`));
    const reports = path.join(work, 'killed');
    const expDir = path.join(reports, 'small');
    const runArgs = ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'run', file, '--zoo', zoo, '--reports', reports, '--executor', 'slurm', '--progress', 'lines', '--no-report'];
    const child = execa('node', runArgs, { cwd: REPO, env, reject: false });
    // Mid-sweep: a merge finished, evaluations queued or running.
    const diagDir = path.join(expDir, 'cache', 'diag');
    for (let i = 0; i < 1200 && (await fs.readdir(diagDir).catch(() => [])).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    process.kill(child.pid!, 'SIGKILL');
    expect((await child).signal).toBe('SIGKILL');
    const liveAfterKill = (await elementsOf(expDir)).filter((e) => e.JobState === 'PENDING' || e.JobState === 'RUNNING').length;
    expect(liveAfterKill).toBeGreaterThan(0);

    // `mergelab status` meanwhile: the jobs' ids, no run in progress.
    const st = await cli(['status', file, '--zoo', zoo, '--reports', reports, '--json'], { env });
    expect(st.exitCode, st.all).toBe(0);
    const status = JSON.parse(st.stdout) as { runPid: number | null; counts: Record<string, number>; points: Array<{ state: string; detail: string }>; slurmJobs: string[] };
    expect(status.runPid).toBeNull();
    expect(status.slurmJobs.length).toBeGreaterThan(0);
    expect(status.counts.running).toBeGreaterThan(0);
    expect(status.points.filter((p) => p.state !== 'done').every((p) => /job \d+_\d+/.test(p.detail))).toBe(true);

    // As if mergelab had died between writing a submission and hearing its job id from sbatch:
    // the job is found again by its name, not submitted a second time.
    const jobsFile = path.join(expDir, 'slurm', 'jobs.json');
    const jobs = JSON.parse(await fs.readFile(jobsFile, 'utf8')) as { submissions: Array<{ jobId: string | null }> };
    jobs.submissions[jobs.submissions.length - 1].jobId = null;
    await fs.writeFile(jobsFile, JSON.stringify(jobs));

    const rerun = execa('node', runArgs, { cwd: REPO, env, reject: false, all: true });
    let seen = '';
    rerun.all!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (/slurm: re-attached to/.test(seen)) void fs.writeFile(gate, '');
    });
    const r = await rerun;
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toMatch(/slurm: re-attached to \d+ task\(s\) still queued or running in jobs/);
    expect(r.all).not.toMatch(/slurm: submitted/);
    expect(withoutTimings(await readJsonl(path.join(expDir, 'results.jsonl')))).toEqual(reference);
    const elements = await elementsOf(expDir);
    console.log(`kill -9 left ${liveAfterKill} tasks queued or running; Slurm ran ${elements.length} elements for ${TASKS} tasks`);
    expect(elements.length).toBe(TASKS);
    expect(new Set(elements.map((e) => `${e.JobName}#${e.ArrayTaskId}`)).size).toBe(TASKS);
  });

  it('Ctrl-C cancels the jobs (--on-interrupt cancel) or leaves them running and says how to re-attach', { timeout: 300_000 }, async () => {
    for (const what of ['cancel', 'leave'] as const) {
      const file = path.join(work, `int-${what}.yaml`);
      // Evaluations wait at a gate nobody opens: there is always something to cancel or leave.
      await fs.writeFile(file, small(`poll_seconds: 0.5\neval:\n  setup: ['while [ ! -e ${path.join(work, 'never')} ]; do sleep 0.2; done']`));
      const reports = path.join(work, `int-${what}`);
      const expDir = path.join(reports, 'small');
      const child = execa('node', ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'run', file, '--zoo', zoo, '--reports', reports, '--executor', 'slurm', '--progress', 'none', '--no-report', '--on-interrupt', what], { cwd: REPO, env, reject: false, all: true });
      // Interrupted once everything is submitted.
      const submitted = async () => ((await fs.readFile(path.join(expDir, 'slurm', 'jobs.json'), 'utf8').catch(() => '')).match(/"jobId": "\d+"/g) ?? []).length;
      for (let i = 0; i < 1200 && (await submitted()) < 6; i++) await new Promise((r) => setTimeout(r, 100));
      process.kill(child.pid!, 'SIGINT');
      const res = await child;
      expect(res.exitCode, res.all).toBe(130);
      const live = (await elementsOf(expDir)).filter((e) => e.JobState === 'PENDING' || e.JobState === 'RUNNING');
      if (what === 'cancel') {
        expect(res.all).toMatch(/interrupted: cancelled Slurm jobs [\d, ]+ \(scancel\)/);
        expect(live).toEqual([]);
      } else {
        expect(res.all).toMatch(/interrupted: \d+ task\(s\) left queued or running in Slurm jobs [\d, ]+; `mergelab run \S+ --executor slurm` re-attaches to them/);
        expect(live.length).toBeGreaterThan(0);
        await execa('scancel', [...new Set(live.map((e) => e.ArrayJobId))], { env });
      }
    }
  });

  it('an evaluation through a started server gets its GPU from Slurm (--gres) and a port of its own on the node', { timeout: 600_000 }, async () => {
    const standIn = path.join(REPO, 'test/fixtures/openai-servers/stand-in.mjs');
    const file = path.join(work, 'served.yaml');
    const variant = (n: string, w: number) => `  ${n}:\n    recipe: |\n      merge_method: linear\n      models:\n        - model: math\n          parameters: {weight: ${w}}\n        - model: chat\n          parameters: {weight: 1}\n      dtype: float32\n`;
    // No executor.eval.gres: a served evaluation asks for gpus_per_eval GPUs by itself.
    await fs.writeFile(
      file,
      `name: served
models: {math: zoo:math, chat: zoo:chat}
eval:
  suites: [math]
  limit: 2
  backend: {type: openai, serve: "node ${standIn} --model {model} --port {port} --delay 500", concurrency: 1}
executor: {poll_seconds: 0.5}
variants:
${variant('a', 0.5)}${variant('b', 1)}`,
    );
    const reports = path.join(work, 'served');
    const expDir = path.join(reports, 'served');
    const r = await cli(['run', file, '--zoo', zoo, '--reports', reports, '--executor', 'slurm', '--progress', 'lines', '--no-report'], { env });
    expect(r.exitCode, r.all).toBe(0);
    const rs = (await readJsonl(path.join(expDir, 'results.jsonl'))) as Array<{ point: string; status: string; scoredBy: { server: { port: number; gpus: string; pid: number } } }>;
    expect(rs.map((x) => [x.point, x.status])).toEqual([['ref math', 'ok'], ['ref chat', 'ok'], ['a', 'ok'], ['b', 'ok']]);
    const scripts = await fs.readdir(path.join(expDir, 'slurm'));
    expect(scripts.some((f) => f.startsWith('eval-'))).toBe(true);
    // Each server saw the one GPU Slurm gave its job, as CUDA_VISIBLE_DEVICES.
    for (const x of rs) {
      expect(['0', '1']).toContain(x.scoredBy.server.gpus);
      const log = await fs.readFile(path.join(expDir, 'logs', `${x.point.replace(/[^A-Za-z0-9._=-]+/g, '_')}.log`), 'utf8');
      expect(log).toContain(`port ${x.scoredBy.server.port} CUDA_VISIBLE_DEVICES=${x.scoredBy.server.gpus}`);
    }
    // Evaluations that ran at once on the node had their own GPUs and ports (each task's log says which).
    const evals = await intervals(expDir, 'eval');
    expect(evals.length).toBe(4);
    const served = new Map<string, { port: number; cuda: string }>();
    for (const f of (await fs.readdir(path.join(expDir, 'slurm', 'logs'))).filter((x) => x.startsWith('eval-'))) {
      const text = await fs.readFile(path.join(expDir, 'slurm', 'logs', f), 'utf8');
      const task = /mergelab task (\S+): start/.exec(text)?.[1];
      const m = /server pid \d+ on port (\d+) \(CUDA_VISIBLE_DEVICES=([^)]*)\)/.exec(text);
      if (task && m) served.set(task, { port: Number(m[1]), cuda: m[2] });
    }
    expect(served.size).toBe(4);
    for (const e of evals) expect(served.get(e.task)!.cuda).toBe(e.gpus);
    let overlapping = 0;
    for (const a of evals) for (const b of evals) if (a.task < b.task && a.start < b.end && b.start < a.end) {
      overlapping++;
      expect(a.gpus).not.toBe(b.gpus);
      expect(served.get(a.task)!.port).not.toBe(served.get(b.task)!.port);
    }
    console.log(`served evaluations on Slurm: ${evals.length}, ${overlapping} pair(s) at once, GPUs ${evals.map((e) => e.gpus).join(' ')}, ports ${[...served.values()].map((x) => x.port).join(' ')}`);
    expect(await fs.readdir(path.join(expDir, 'servers'))).toEqual([]);
  });

  it('refuses up front a partition whose nodes cannot see the experiment folder, and an unknown partition', async () => {
    const file = path.join(work, 'far.yaml');
    await fs.writeFile(file, small('partition: far'));
    const r = await cli(['run', file, '--zoo', zoo, '--reports', path.join(work, 'far'), '--executor', 'slurm', '--progress', 'none'], { env, timeoutMs: 60_000 });
    // Problems with the experiment's settings: exit 1, the code of a problem with the user's input.
    expect(r.exitCode).toBe(1);
    expect(r.all).toMatch(/the experiment folder \(cache and results\) \S+far\/small is on a \S+ filesystem of this machine \(\S+\), but the jobs run on far1: it must be on storage every node sees/);
    expect(r.all).not.toMatch(/\n\s+at /);
    const bad = path.join(work, 'nopart.yaml');
    await fs.writeFile(bad, small('partition: nope'));
    const r2 = await cli(['run', bad, '--zoo', zoo, '--reports', path.join(work, 'nopart'), '--executor', 'slurm', '--progress', 'none'], { env, timeoutMs: 60_000 });
    expect(r2.exitCode).toBe(1);
    expect(r2.all).toMatch(/nopart\.yaml:\d+:\d+: field executor\.partition \(for merge tasks\): no partition 'nope' on this cluster \(partitions: (debug, far|far, debug)\)/);
    expect((await elementsOf(path.join(work, 'far', 'small'))).length).toBe(0);
  });
});
