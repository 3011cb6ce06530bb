/**
 * The openai backend with a server started per model: faults (a server that exits at start, one
 * that never becomes ready, one that answers 500 a few times, one that hangs), abort, GPUs given
 * to concurrent evaluations, and reaping servers a killed mergelab left behind. The servers are
 * real processes (test/fixtures/openai-servers/stand-in.mjs).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { evaluateWithBackend, type BackendEvalConfig } from '../../src/eval/backends/run.js';
import { EvalBackendSchema } from '../../src/eval/backends/config.js';
import { reapServers } from '../../src/eval/backends/process.js';

const REPO = path.resolve(__dirname, '../..');
const STANDIN = path.join(REPO, 'test/fixtures/openai-servers/stand-in.mjs');

let dir: string;
let evalsDir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mergelab-openai-backend-'));
  evalsDir = path.join(dir, 'evals');
  const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  for (const s of ['math', 'lm']) copyFileSync(path.join(REPO, 'evals', `${s}.yaml`), path.join(dir, `${s}.yaml`));
  mkdirSync(evalsDir);
  for (const s of ['math', 'lm']) copyFileSync(path.join(dir, `${s}.yaml`), path.join(evalsDir, `${s}.yaml`));
  writeFileSync(path.join(evalsDir, 'math.jsonl'), jsonl([
    { id: 'a', question: 'Kim has 2 pens and gets 2 more. How many pens?', answer: 'Kim has 2 + 2 = 4 pens.\n#### 4' },
    { id: 'b', question: 'Ned has 6 socks and gives 2 away. How many socks?', answer: 'Ned has 6 - 2 = 4 socks.\n#### 4' },
  ]));
  writeFileSync(path.join(evalsDir, 'lm.jsonl'), jsonl([{ id: 'x', text: 'Tom had 5 apples.' }]));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Pids of processes whose command line carries `tag` (the stand-in servers of one test). */
function processesWith(tag: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(STANDIN) && cmd.includes(tag)) out.push(Number(p));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

function config(mode: string, tag: string, extra: Record<string, unknown> = {}, suites = ['math']): BackendEvalConfig {
  const backend = EvalBackendSchema.parse({
    type: 'openai',
    serve: `node ${STANDIN} --model {model} --port {port} --mode ${mode} --tag ${tag}`,
    ready_timeout: 2,
    request_timeout: 1,
    retries: 3,
    backoff: 0.05,
    stop_grace: 2,
    ...extra,
  });
  return { suites, limit: null, batchSize: 4, samples: 2, backend };
}

const oneLine = (e: unknown) => {
  expect((e as Error).message).not.toContain('\n');
  return (e as Error).message;
};

describe('openai backend, server started per model', () => {
  it('scores through a started server and stops it', async () => {
    const tag = `ok-${process.pid}`;
    const pidDir = path.join(dir, 'pids-ok');
    const out = await evaluateWithBackend('/models/m1', config('ok', tag, {}, ['math', 'lm']), { evalsDir, pidDir, logFile: path.join(dir, 'ok.log') });
    expect(out.metrics.math).toMatchObject({ n: 2, exact_match_strict: 1, exact_match_flexible: 1 });
    expect(out.metrics.lm.nll_per_token).toBeCloseTo(0.5);
    expect(out.provenance).toMatchObject({ backend: 'openai', servedModel: 'stand-in', retries: 0 });
    expect(out.provenance.command).toContain('--model /models/m1 --port');
    expect(out.provenance.key).toMatch(/^openai:[0-9a-f]{16}$/);
    expect(out.backend).toBe(`openai-serve:node ${STANDIN} --model {model} --port {port} --mode ok --tag ${tag}`);
    expect(readFileSync(path.join(dir, 'ok.log'), 'utf8')).toContain('stand-in server mode ok');
    expect(processesWith(tag)).toEqual([]);
    expect(readdirSync(pidDir)).toEqual([]);
  });

  it('a server that exits at start fails the evaluation with its exit code and log', async () => {
    const tag = `exit-${process.pid}`;
    const e = await evaluateWithBackend('/models/m1', config('exit', tag), { evalsDir }).catch((x: unknown) => x);
    expect(oneLine(e)).toMatch(/server exited with code 3 before it was ready; server log \(.*\): .*no CUDA GPUs are available/);
    expect(processesWith(tag)).toEqual([]);
  });

  it('a server that never becomes ready fails after ready_timeout and is stopped', async () => {
    const tag = `never-${process.pid}`;
    const e = await evaluateWithBackend('/models/m1', config('never', tag), { evalsDir }).catch((x: unknown) => x);
    expect(oneLine(e)).toMatch(/server not ready after 2 s \(GET \/v1\/models never answered 200; ready_timeout\)/);
    expect(processesWith(tag)).toEqual([]);
  });

  it('HTTP 500 a few times, then recovery: retried with backoff, scores as usual', async () => {
    const tag = `flaky-${process.pid}`;
    const out = await evaluateWithBackend('/models/m1', config('flaky:3', tag, { concurrency: 1 }), { evalsDir });
    expect(out.metrics.math).toMatchObject({ n: 2, exact_match_strict: 1 });
    expect(out.provenance.retries).toBe(3);
    expect(processesWith(tag)).toEqual([]);
  });

  it('more 500s than retries fail with the last answer', async () => {
    const tag = `flaky9-${process.pid}`;
    const e = await evaluateWithBackend('/models/m1', config('flaky:99', tag, { retries: 2 }), { evalsDir }).catch((x: unknown) => x);
    expect(oneLine(e)).toMatch(/POST \/v1\/completions failed after 3 tries: HTTP 500: .*engine busy/);
    expect(processesWith(tag)).toEqual([]);
  });

  it('a server that hangs mid-request fails at request_timeout and is stopped', async () => {
    const tag = `hang-${process.pid}`;
    const e = await evaluateWithBackend('/models/m1', config('hang', tag), { evalsDir }).catch((x: unknown) => x);
    expect(oneLine(e)).toMatch(/no answer within 1 s \(request_timeout\)/);
    expect(processesWith(tag)).toEqual([]);
  });

  it('abort stops the server at once', async () => {
    const tag = `abort-${process.pid}`;
    const ac = new AbortController();
    const pidDir = path.join(dir, 'pids-abort');
    const run = evaluateWithBackend('/models/m1', config('ok', tag, { request_timeout: 30 }), { evalsDir, pidDir, signal: ac.signal });
    // --delay is not given: abort while the server starts or scores, whichever comes first.
    setTimeout(() => ac.abort(new Error('interrupted')), 300);
    await expect(run).rejects.toThrow(/interrupted/);
    expect(processesWith(tag)).toEqual([]);
    expect(readdirSync(pidDir)).toEqual([]);
  });

  it('two evaluations at once get their own GPUs and ports', async () => {
    const tag = `gpu-${process.pid}`;
    const pidDir = path.join(dir, 'pids-gpu');
    const cfg = config('ok', `${tag} --delay 300`, { concurrency: 1 }, ['math']);
    const runs = [0, 1].map((g) => evaluateWithBackend(`/models/m${g}`, cfg, { evalsDir, pidDir, gpus: [g] }));
    const seen = new Map<number, { cuda: string | undefined; port: number }>();
    const deadline = Date.now() + 20_000;
    while (seen.size < 2 && Date.now() < deadline) {
      // Only published pid files: a temporary sibling may be half-written.
      for (const f of existsSync(pidDir) ? readdirSync(pidDir).filter((n) => /^server-\d+\.json$/.test(n)) : []) {
        const rec = JSON.parse(readFileSync(path.join(pidDir, f), 'utf8')) as { pid: number; port: number };
        if (seen.has(rec.pid)) continue;
        try {
          const env = readFileSync(`/proc/${rec.pid}/environ`, 'utf8').split('\0');
          seen.set(rec.pid, { cuda: env.find((e) => e.startsWith('CUDA_VISIBLE_DEVICES='))?.split('=')[1], port: rec.port });
        } catch {
          // not readable yet
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const outs = await Promise.all(runs);
    expect([...seen.values()].map((s) => s.cuda).sort()).toEqual(['0', '1']);
    const ports = [...seen.values()].map((s) => s.port);
    expect(new Set(ports).size).toBe(2);
    expect(outs.map((o) => o.provenance.server?.gpus)).toEqual(['0', '1']);
    expect(processesWith(tag)).toEqual([]);
  });

  it('reapServers stops servers whose mergelab was killed with SIGKILL', async () => {
    const tag = `reap-${process.pid}`;
    const pidDir = path.join(dir, 'pids-reap');
    const script = `
      import { startProcess } from ${JSON.stringify(path.join(REPO, 'src/eval/backends/process.ts'))};
      await startProcess({ command: ${JSON.stringify(`node ${STANDIN} --port 0 --mode never --tag ${tag}`)}, modelDir: 'm', port: 0, host: '127.0.0.1', gpus: [], logFile: ${JSON.stringify(path.join(dir, 'reap.log'))}, pidDir: ${JSON.stringify(pidDir)}, stopGraceMs: 1000 });
      process.stdout.write('started\\n');
      setInterval(() => {}, 1000);`;
    const scriptFile = path.join(dir, 'owner.mts');
    writeFileSync(scriptFile, script);
    const owner = execa('node', ['--import', 'tsx', scriptFile], { cwd: REPO, reject: false });
    await new Promise<void>((resolve) => owner.stdout!.on('data', (d: Buffer) => d.toString().includes('started') && resolve()));
    owner.kill('SIGKILL');
    await owner;
    expect(processesWith(tag).length).toBeGreaterThan(0);
    const [file] = readdirSync(pidDir);
    const stopped = await reapServers(pidDir, { graceMs: 1000 });
    expect(stopped).toEqual([Number(/server-(\d+)\.json/.exec(file)![1])]);
    expect(processesWith(tag)).toEqual([]);
    expect(readdirSync(pidDir)).toEqual([]);
  });
});
