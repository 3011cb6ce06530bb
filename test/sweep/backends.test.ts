import { promises as fs, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO, cli, readJsonl, seedShapedExperiment, tempDir, tinyZoo } from './helpers.js';

/**
 * Sweeps scored by other backends than the built-in evaluator, with real processes: the real CLI
 * (`mergelab run`), `mergelab serve` started per point by the openai backend, stand-in servers
 * that fail in chosen ways (test/fixtures/openai-servers/stand-in.mjs) and a stand-in `lm_eval`
 * that writes lm-eval's own output files (test/fixtures/lm-eval/).
 */

const STANDIN = path.join(REPO, 'test/fixtures/openai-servers/stand-in.mjs');

type Rec = Record<string, unknown> & { point: string; status: string; metrics: Record<string, Record<string, number>>; scoredBy?: Record<string, unknown>; error?: string; samples: unknown[]; items?: Record<string, unknown> };

/** Processes whose environment carries MERGELAB_TEST_TAG=tag (the servers and lm_eval runs of one test). */
function tagged(tag: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const env = readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // A zombie waiting for its parent has exited.
      if (env.includes(`MERGELAB_TEST_TAG=${tag}`) && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(p));
    } catch {
      // exited while we looked, or not ours
    }
  }
  return out;
}

const yamlString = (s: string): string => JSON.stringify(s);

let zoo: string;
let work: string;
let bin: string;

beforeAll(async () => {
  zoo = await tinyZoo();
  work = await tempDir('sweep-backends');
  bin = path.join(work, 'bin');
  await fs.mkdir(bin);
  // `mergelab` and `lm_eval` as a user has them on PATH.
  await fs.writeFile(path.join(bin, 'mergelab'), `#!/bin/sh\nexec node --import tsx ${path.join(REPO, 'src/cli/main.ts')} "$@"\n`, { mode: 0o755 });
  await fs.writeFile(path.join(bin, 'lm_eval'), `#!/bin/sh\nexec node ${path.join(REPO, 'test/fixtures/lm-eval/lm_eval.mjs')} "$@"\n`, { mode: 0o755 });
});

async function runCli(args: string[], what: string, expectCode = 0): Promise<string> {
  const r = await cli(['run', ...args, '--progress', 'lines']);
  if (r.exitCode !== expectCode) throw new Error(`${what}: exit ${r.exitCode} (expected ${expectCode}):\n${r.all}`);
  return r.all ?? '';
}

const byPoint = (rs: Rec[]): Map<string, Rec> => new Map(rs.map((r) => [r.point, r]));

describe('openai backend through `mergelab serve` gives the built-in scores', () => {
  /** A sweep of `models`, `recipe` and one axis, scored by `backend` (a YAML flow mapping, or builtin). */
  const experiment = (name: string, backend: string, o: { models: string; recipe: string; axis: string; suites: string; extra?: string }) => `name: ${name}
models: ${o.models}
eval:
  suites: ${o.suites}
  limit: 3
  batch_size: 8
  samples: 2
  backend: ${backend}
${o.extra ?? ''}recipe: |
${o.recipe
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
sweep: {grid: ${o.axis}}
`;

  async function compare(tag: string, o: Parameters<typeof experiment>[2], zooDir: string | null, expectPoints: number): Promise<void> {
    const dir = path.join(work, tag);
    await fs.mkdir(dir, { recursive: true });
    const served = `{type: openai, serve: "mergelab serve {model} --port {port} --quiet", ready_timeout: 300, concurrency: 8, env: {PATH: ${yamlString(`${bin}:${process.env.PATH}`)}, MERGELAB_TEST_TAG: ${tag}}}`;
    // One name (it is in the point ids), two report folders.
    await fs.writeFile(path.join(dir, 'builtin.yaml'), experiment('eq', 'builtin', o));
    await fs.writeFile(path.join(dir, 'served.yaml'), experiment('eq', served, o));
    const zooArgs = zooDir ? ['--zoo', zooDir] : [];
    await runCli([path.join(dir, 'builtin.yaml'), ...zooArgs, '--reports', path.join(dir, 'builtin'), '--jobs', '2', '--no-report'], 'builtin sweep');
    const out = await runCli([path.join(dir, 'served.yaml'), ...zooArgs, '--reports', path.join(dir, 'served'), '--jobs', '2', '--no-report'], 'served sweep');
    expect(out).toMatch(new RegExp(`evaluations performed: ${expectPoints}\\b`));
    const a = byPoint((await readJsonl(path.join(dir, 'builtin/eq/results.jsonl'))) as Rec[]);
    const b = byPoint((await readJsonl(path.join(dir, 'served/eq/results.jsonl'))) as Rec[]);
    expect([...b.keys()]).toEqual([...a.keys()]);
    expect(b.size).toBe(expectPoints);
    for (const [id, ra] of a) {
      const rb = b.get(id)!;
      expect(rb.status, `${id}: ${rb.error}`).toBe('ok');
      for (const s of Object.keys(ra.metrics)) {
        if (s === 'lm') {
          expect(rb.metrics.lm.tokens, id).toBe(ra.metrics.lm.tokens);
          for (const m of ['nll_per_token', 'perplexity', 'bits_per_char']) expect(rb.metrics.lm[m], `${id} lm.${m}`).toBeCloseTo(ra.metrics.lm[m], 4);
        } else expect(rb.metrics[s], `${id} ${s}`).toEqual(ra.metrics[s]);
      }
      expect(rb.samples, id).toEqual(ra.samples);
      expect(rb.metricSpecs).toEqual(ra.metricSpecs);
      expect((rb.items as Record<string, unknown>).math).toEqual((ra.items as Record<string, unknown>).math);
      expect(ra.scoredBy).toBeUndefined();
      expect(rb.scoredBy).toMatchObject({ backend: 'openai', template: 'mergelab serve {model} --port {port} --quiet', retries: 0 });
      expect(String(rb.scoredBy!.command)).toMatch(/^mergelab serve \S+ --port \d+ --quiet$/);
    }
    // Each point's server wrote to the point's log; none is left running, no pid file is left.
    const logs = await fs.readdir(path.join(dir, 'served/eq/logs'));
    expect(logs.length).toBe(expectPoints);
    expect(readFileSync(path.join(dir, 'served/eq/logs', logs[0]), 'utf8')).toMatch(/mergelab serve: model \S+ at http:\/\/127\.0\.0\.1:\d+\/v1 \(port \d+\)/);
    expect(tagged(tag)).toEqual([]);
    expect(await fs.readdir(path.join(dir, 'served/eq/servers'))).toEqual([]);
  }

  it('the tiny zoo: 3 references and 2 task-arithmetic merges, math, chat and perplexity', { timeout: 900_000 }, async () => {
    await compare(
      'tiny',
      {
        models: '{base: zoo:base, math: zoo:math, chat: zoo:chat}',
        suites: '[math, chat, lm]',
        recipe: 'merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: math\n    parameters: {weight: ${w}}\n  - model: chat\n    parameters: {weight: 1}\ndtype: float32',
        axis: '{w: [0.5, 1]}',
      },
      zoo,
      5,
    );
  });

  it('the committed zoo: its math and chat models and their linear merge', { timeout: 900_000 }, async () => {
    await compare(
      'committed',
      {
        models: '{math: zoo:math, chat: zoo:chat}',
        suites: '[math, chat]',
        recipe: 'merge_method: linear\nmodels:\n  - model: math\n    parameters: {weight: ${w}}\n  - model: chat\n    parameters: {weight: 1}\ndtype: float32',
        axis: '{w: [1]}',
      },
      null,
      3,
    );
  });
});

/** One single-stage variant per stage name: the stand-ins behave by the stage a model folder holds. */
function variantsByStage(names: string[]): string {
  return names
    .map((n) => `  ${n}:\n    recipe: |\n      name: ${n}\n      merge_method: linear\n      models:\n        - model: math\n          parameters: {weight: 1}\n        - model: chat\n          parameters: {weight: 1}\n      dtype: float32\n`)
    .join('');
}

describe('faults of started servers in a sweep', () => {
  it('each failing point is recorded with a one-line reason, the sweep goes on on two GPUs, no server is left, and a rerun retries only the failed points', { timeout: 600_000 }, async () => {
    const tag = `faults-${process.pid}`;
    const dir = path.join(work, 'faults');
    await fs.mkdir(dir, { recursive: true });
    const heal = path.join(dir, 'healed');
    const file = path.join(dir, 'faults.yaml');
    await fs.writeFile(
      file,
      `name: faults
models: {math: zoo:math, chat: zoo:chat}
eval:
  suites: [math]
  limit: 2
  samples: 1
  backend:
    type: openai
    serve: "node ${STANDIN} --model {model} --port {port} --mode-from-stage --heal-file ${heal} --delay 300"
    ready_timeout: 3
    request_timeout: 2
    retries: 3
    backoff: 0.05
    stop_grace: 2
    concurrency: 1
    env: {MERGELAB_TEST_TAG: ${tag}}
resources: {gpus: [0, 1], gpus_per_eval: 1}
variants:
${variantsByStage(['ok', 'exit', 'never', 'flaky_3', 'hang'])}`,
    );
    const reports = path.join(dir, 'reports');
    const servers = path.join(reports, 'faults', 'servers');
    // Watch the servers while the sweep runs: their pid files, and in /proc their environment.
    const seen = new Map<number, { cuda: string | undefined; port: number }>();
    let together = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const alive: number[] = [];
        for (const f of await fs.readdir(servers).catch(() => [] as string[])) {
          if (!/^server-\d+\.json$/.test(f)) continue;
          try {
            const rec = JSON.parse(readFileSync(path.join(servers, f), 'utf8')) as { pid: number; port: number };
            const env = readFileSync(`/proc/${rec.pid}/environ`, 'utf8').split('\0');
            alive.push(rec.pid);
            if (!seen.has(rec.pid)) seen.set(rec.pid, { cuda: env.find((e) => e.startsWith('CUDA_VISIBLE_DEVICES='))?.slice('CUDA_VISIBLE_DEVICES='.length), port: rec.port });
          } catch {
            // just stopped
          }
        }
        if (alive.length >= 2) together = Math.max(together, alive.length);
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    const out = await runCli([file, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--no-report'], 'faults sweep', 1).finally(() => (watching = false));
    await watch;
    const rs = byPoint((await readJsonl(path.join(reports, 'faults', 'results.jsonl'))) as Rec[]);
    expect([...rs.keys()]).toEqual(['ref math', 'ref chat', 'ok', 'exit', 'never', 'flaky_3', 'hang']);
    const status = Object.fromEntries([...rs].map(([id, r]) => [id, r.status]));
    expect(status).toEqual({ 'ref math': 'ok', 'ref chat': 'ok', ok: 'ok', exit: 'failed', never: 'failed', flaky_3: 'ok', hang: 'failed' });
    for (const id of ['exit', 'never', 'hang']) {
      expect(rs.get(id)!.error).not.toContain('\n');
      expect(rs.get(id)!.scoredBy).toMatchObject({ backend: 'openai', template: expect.stringContaining('--mode-from-stage') });
    }
    expect(rs.get('exit')!.error).toMatch(/^evaluation failed: server exited with code 3 before it was ready; server log \(.*logs\/exit\.log\): .*no CUDA GPUs are available/);
    expect(rs.get('never')!.error).toMatch(/^evaluation failed: server not ready after 3 s \(GET \/v1\/models never answered 200; ready_timeout\)/);
    expect(rs.get('hang')!.error).toMatch(/^evaluation failed: POST .*\/v1\/completions: no answer within 2 s \(request_timeout\)/);
    // Three HTTP 500s, retried with backoff: the point is scored like the others.
    expect(rs.get('flaky_3')!.scoredBy).toMatchObject({ retries: 3 });
    expect(rs.get('flaky_3')!.metrics).toEqual(rs.get('ok')!.metrics);
    expect(out).toMatch(/FAILED never: evaluation failed: server not ready/);
    expect(out).toMatch(/failed: 3\b/);
    // Two servers at once, never more, on GPUs 0 and 1, on two ports.
    expect(together).toBe(2);
    expect(new Set([...seen.values()].map((s) => s.cuda))).toEqual(new Set(['0', '1']));
    const ports = [...seen.values()].map((s) => s.port);
    expect(new Set(ports).size).toBe(ports.length);
    expect(tagged(tag)).toEqual([]);
    expect(await fs.readdir(servers)).toEqual([]);

    // The servers work now: the rerun scores the three failed points and takes the rest from the cache.
    await fs.writeFile(heal, '');
    const again = await runCli([file, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--no-report'], 'rerun');
    expect(again).toMatch(/cache .*: 4\/7 points complete/);
    expect(again).toMatch(/evaluations performed: 3, reused: 4\b/);
    expect(again).toMatch(/merges performed: 3\b/);
    const after = byPoint((await readJsonl(path.join(reports, 'faults', 'results.jsonl'))) as Rec[]);
    expect([...after.values()].every((r) => r.status === 'ok')).toBe(true);
    for (const id of ['ref math', 'ref chat', 'ok', 'flaky_3']) expect(after.get(id)).toEqual(rs.get(id));
    expect(tagged(tag)).toEqual([]);
  });

  it('after mergelab is killed with SIGKILL, the next run stops the server it left before starting new ones', { timeout: 600_000 }, async () => {
    const tag = `killed-${process.pid}`;
    const dir = path.join(work, 'killed');
    await fs.mkdir(dir, { recursive: true });
    const heal = path.join(dir, 'healed');
    const file = path.join(dir, 'killed.yaml');
    await fs.writeFile(
      file,
      `name: killed
models: {math: zoo:math, chat: zoo:chat}
eval:
  suites: [math]
  limit: 2
  backend: {type: openai, serve: "node ${STANDIN} --model {model} --port {port} --heal-file ${heal} --delay 60000", request_timeout: 120, concurrency: 1, env: {MERGELAB_TEST_TAG: ${tag}}}
variants:
${variantsByStage(['ok'])}`,
    );
    const reports = path.join(dir, 'reports');
    const servers = path.join(reports, 'killed', 'servers');
    // Its own process group: mergelab and its workers die together, the servers (groups of their own) stay.
    const run = execa('node', ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), 'run', file, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--no-report', '--progress', 'none'], { cwd: REPO, detached: true, reject: false });
    const deadline = Date.now() + 240_000;
    let pidFile: string | undefined;
    while (!pidFile && Date.now() < deadline) {
      pidFile = (await fs.readdir(servers).catch(() => [] as string[])).find((f) => /^server-\d+\.json$/.test(f));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(pidFile).toBeDefined();
    const orphan = Number(/server-(\d+)\.json/.exec(pidFile!)![1]);
    process.kill(-run.pid!, 'SIGKILL');
    await run;
    expect(tagged(tag)).toContain(orphan);

    await fs.writeFile(heal, '');
    const out = await runCli([file, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--no-report'], 'run after the kill');
    expect(out).toContain(`stopped 1 server left running by an earlier run (pid ${orphan})`);
    expect(out.indexOf('stopped 1 server')).toBeLessThan(out.indexOf('done ref math'));
    expect(tagged(tag)).toEqual([]);
    const rs = (await readJsonl(path.join(reports, 'killed', 'results.jsonl'))) as Rec[];
    expect(rs.map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
  });
});

describe('max_models_on_disk in a sweep', () => {
  it('a chained sweep with --jobs 2 never has more merged checkpoints on disk than the bound, and finishes', { timeout: 600_000 }, async () => {
    const dir = path.join(work, 'bounded');
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'bounded.yaml');
    // 2 densities x 2 seeds of the seed's chain (3 second stages each) and stage 1 alone: 12 DARE-then-task-arithmetic points.
    await fs.writeFile(file, seedShapedExperiment('bounded', { densities: [0.3, 0.8], seeds: [1, 2], limit: 1, suites: ['lm'] }) + 'max_models_on_disk: 2\n');
    const reports = path.join(dir, 'reports');
    const cache = path.join(reports, 'bounded', 'cache');
    let peak = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        // Published stage folders, and merges being written (their temporary folders).
        const stages = (await fs.readdir(path.join(cache, 'stages')).catch(() => [] as string[])).length;
        const writing = (await fs.readdir(path.join(cache, 'tmp')).catch(() => [] as string[])).filter((n) => n.startsWith('merge-')).length;
        peak = Math.max(peak, stages + writing);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const out = await runCli([file, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--no-report'], 'bounded sweep').finally(() => (watching = false));
    await watch;
    expect(out).toMatch(/at most 2 on disk at once \(max_models_on_disk\)/);
    expect(out).not.toMatch(/beyond the bound/);
    expect(out).toMatch(/failed: 0\b/);
    const rs = (await readJsonl(path.join(reports, 'bounded', 'results.jsonl'))) as Rec[];
    expect(rs.length).toBe(3 + 2 * 2 * 3 + 2 * 2 + 2);
    expect(rs.every((r) => r.status === 'ok')).toBe(true);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(2);
    // The bound below the chain's two stages cannot be met: said before anything runs.
    await fs.writeFile(file, seedShapedExperiment('bounded', { densities: [0.3], seeds: [1], limit: 1, suites: ['lm'] }) + 'max_models_on_disk: 1\n');
    const r = await cli(['run', file, '--zoo', zoo, '--reports', path.join(dir, 'one'), '--progress', 'none', '--no-report']);
    expect(r.exitCode).toBe(1);
    expect(r.all).toMatch(/bounded\.yaml:\d+:\d+: field max_models_on_disk: 1 is less than the 2 checkpoints a chain of stages of this sweep keeps on disk at once/);
  });
});

describe('the program a backend starts', () => {
  it('is read off the command template, past VAR=value and wrappers', async () => {
    const { programOf } = await import('../../src/eval/backends/process.js');
    expect(programOf('vllm serve {model} --port {port}')).toBe('vllm');
    expect(programOf('HF_HUB_OFFLINE=1 exec env TOKENIZERS_PARALLELISM=false /opt/venv/bin/lm_eval --model hf')).toBe('/opt/venv/bin/lm_eval');
    expect(programOf('env -u X lm_eval')).toBeNull();
    expect(programOf('cd /work && vllm serve {model}')).toBeNull();
    expect(programOf('"$HOME/bin/server" {model}')).toBeNull();
  });

  it('is looked for before anything is merged: a missing lm_eval is said at its field with how to install it', async () => {
    const dir = path.join(work, 'missing');
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, 'missing.yaml');
    await fs.writeFile(file, `name: missing\nmodels: {math: zoo:math, chat: zoo:chat}\neval:\n  suites: [math]\n  backend: {type: lm-eval, env: {PATH: /nonexistent}}\nvariants:\n${variantsByStage(['a'])}`);
    const r = await cli(['run', file, '--zoo', zoo, '--reports', path.join(dir, 'reports'), '--progress', 'none']);
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toMatch(/missing\.yaml:5:\d+: field eval\.backend\.command: lm_eval: command not found on PATH; install lm-evaluation-harness \(pip install "lm_eval\[hf,ifeval\]"/);
    expect(r.all).not.toMatch(/\n\s+at /);
    await expect(fs.access(path.join(dir, 'reports', 'missing', 'results.jsonl'))).rejects.toThrow();
  });
});

describe('lm-eval in a sweep', () => {
  it('records its scores with declarations, per-document outcomes and generations, shows them on the report page; an lm_eval that fails is one failed point, retried alone', { timeout: 600_000 }, async () => {
    const tag = `lmeval-${process.pid}`;
    const dir = path.join(work, 'lmeval');
    await fs.mkdir(dir, { recursive: true });
    const heal = path.join(dir, 'healed');
    const calls = path.join(dir, 'calls.jsonl');
    const file = path.join(dir, 'lmeval.yaml');
    await fs.writeFile(
      file,
      `name: lmeval
models: {math: zoo:math, chat: zoo:chat}
eval:
  suites: [math, chat]
  limit: 4
  samples: 3
  backend:
    type: lm-eval
    env: {PATH: ${yamlString(`${bin}:${process.env.PATH}`)}, MERGELAB_TEST_TAG: ${tag}, FAKE_LM_EVAL_RECORD: ${calls}, FAKE_LM_EVAL_WRONG_STAGE: broken, FAKE_LM_EVAL_EXIT_STAGE: oom, FAKE_LM_EVAL_HEALED: ${heal}}
resources: {gpus: [0, 1]}
variants:
${variantsByStage(['good', 'broken', 'oom'])}`,
    );
    const reports = path.join(dir, 'reports');
    const expDir = path.join(reports, 'lmeval');
    const out = await runCli([file, '--zoo', zoo, '--reports', reports, '--jobs', '2'], 'lm-eval sweep', 1);
    expect(out).toMatch(/FAILED oom: evaluation failed: lm_eval exited with code 1: .*CUDA out of memory/);
    const rs = byPoint((await readJsonl(path.join(expDir, 'results.jsonl'))) as Rec[]);
    expect([...rs.keys()]).toEqual(['ref math', 'ref chat', 'good', 'broken', 'oom']);
    const good = rs.get('good')!;
    expect(good.metrics.math).toEqual({ n: 4, exact_match_strict: 0.25, exact_match_strict_stderr: 0.25, exact_match_flexible: 0.75, exact_match_flexible_stderr: 0.25 });
    expect(good.metrics.chat.prompt_level_strict).toBeCloseTo(2 / 3);
    expect(good.scoredBy).toMatchObject({ backend: 'lm-eval', lmEvalVersion: '0.4.13.dev0', template: expect.stringMatching(/^lm_eval --model hf /), gpus: expect.stringMatching(/^[01]$/) });
    expect(String(good.scoredBy!.command)).toMatch(/pretrained=\S+\/cache\/stages\/\w+,dtype=bfloat16 --tasks gsm8k,ifeval .* --limit 4$/);
    expect((good.items as Record<string, { ids: string[]; values: Record<string, number[]> }>).math.values.exact_match_flexible).toEqual([1, 1, 0, 1]);
    expect(good.samples).toHaveLength(6);
    expect(rs.get('broken')!.metrics.math.exact_match_flexible).toBe(0);
    expect(rs.get('oom')!.status).toBe('failed');
    expect(rs.get('oom')!.error).not.toContain('\n');
    // lm_eval's own output is kept, its console output is in the point's log.
    expect(readdirSync(path.join(expDir, 'lm-eval', 'good', 'out')).length).toBe(1);
    expect(readFileSync(path.join(expDir, 'logs', 'good.log'), 'utf8')).toMatch(/hf \(pretrained=.*\), limit: 4/);
    expect(tagged(tag)).toEqual([]);

    // The page: the backend in the header, lm-eval's scores with intervals, the collapsed point's generations beside the parents'.
    const html = readFileSync(path.join(expDir, 'index.html'), 'utf8');
    const onPage = (re: RegExp): boolean => re.test(html);
    expect(onPage(/Scored by lm-eval, lm_eval --model hf --model_args pretrained=\{model\},dtype=bfloat16 --tasks \{tasks\} --output_path \{out\} --log_samples, key lm-eval:[0-9a-f]{16}, lm-eval 0\.4\.13\.dev0 \(5 points\)\./), 'the backend in the header').toBe(true);
    expect(onPage(/Collapsed points: 1 of 3/), 'the collapse').toBe(true);
    // math.exact_match_strict of the good merge, 1 of 4 documents, with its Wilson interval.
    expect(onPage(/<td>0\.25 <span class="iv">\[0\.05, 0\.70\]<\/span><\/td>/), 'a score with its interval').toBe(true);
    expect(onPage(/<td class="this"><span class="bad">&#10007;<\/span> <pre>I cannot help with that\.<\/pre><\/td><td><span class="good">&#10003;<\/span> <pre> Tom has 5 \+ 7 = 12 apples\./), 'generations beside the parents\'').toBe(true);

    // lm_eval runs again only for the failed point.
    const before = readFileSync(calls, 'utf8').trim().split('\n').length;
    await fs.writeFile(heal, '');
    const again = await runCli([file, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--no-report'], 'rerun');
    expect(again).toMatch(/evaluations performed: 1, reused: 4\b/);
    expect(readFileSync(calls, 'utf8').trim().split('\n').length).toBe(before + 1);
    expect(byPoint((await readJsonl(path.join(expDir, 'results.jsonl'))) as Rec[]).get('oom')!.status).toBe('ok');
  });
});
