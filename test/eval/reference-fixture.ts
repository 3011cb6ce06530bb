/**
 * The tfjs reference's outputs on the committed zoo, kept as a fixture so CI can hold the fast
 * runner to them without running the reference (about four minutes for the three models' full
 * sets on a quiet 2-core machine).
 *   npx tsx test/eval/reference-fixture.ts [--models base,math,chat]   # (re)write the fixture
 *   npx tsx test/eval/reference-fixture.ts --check                     # non-CI: run the reference
 *       live, compare it with the fixture, and the fast runner with both
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZooBackend } from '../../src/eval/backends/zoo.js';
import { FastZooBackend } from '../../src/eval/backends/fast.js';
import type { EvalBackend, GenerateRequest, Generation, Score } from '../../src/eval/backends/types.js';
import { DEFAULT_EVALS_DIR } from '../../src/eval/evaluate.js';
import { loadTask, selectRows } from '../../src/eval/task.js';
import { renderTemplate } from '../../src/eval/template.js';
import { writeFileAtomic } from '../../src/util/atomic.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ZOO = path.resolve(here, '../../data/zoo');
/** One file per model, so the three can be generated in parallel. */
export const fixtureFile = (model: string) => path.join(here, `fixtures/zoo-reference-${model}.json`);
export const FIXTURE_BATCH = 32;
export const ZOO_MODELS = ['base', 'math', 'chat'] as const;

export interface ModelOutputs { weightsSha256: string; math: Generation[]; chat: Generation[]; lm: Score[] }
export interface ReferenceFixture { backend: string; batchSize: number; outputs: ModelOutputs }

export function weightsDigest(dir: string): string {
  return createHash('sha256').update(readFileSync(path.join(dir, 'model.safetensors'))).digest('hex');
}

/** Full-set requests of a generation suite, as the evaluator builds them. */
export async function suiteRequests(suite: string, limit?: number): Promise<GenerateRequest[]> {
  const task = await loadTask(suite, DEFAULT_EVALS_DIR);
  const spec = task.spec as { prompt: string; generation: { max_new_tokens: number; stop: string[] }; id_field: string };
  return selectRows(task, limit).map((r) => ({ id: String(r[spec.id_field]), prompt: renderTemplate(spec.prompt, r), maxNewTokens: spec.generation.max_new_tokens, stop: spec.generation.stop }));
}

export async function lmRequests(limit?: number): Promise<Array<{ id: string; text: string }>> {
  const task = await loadTask('lm', DEFAULT_EVALS_DIR);
  return selectRows(task, limit).map((r, i) => ({ id: String(i), text: String(r.text) }));
}

/** One suite per call, as the evaluator asks a backend. */
export async function runAll(b: EvalBackend, dir: string, batchSize: number, limit?: number, scoring = true): Promise<ModelOutputs> {
  return {
    weightsSha256: weightsDigest(dir),
    math: await b.generate(await suiteRequests('math', limit), { batchSize }),
    chat: await b.generate(await suiteRequests('chat', limit), { batchSize }),
    lm: scoring ? await b.score(await lmRequests(limit), { batchSize }) : [],
  };
}

/** Differences between two runs' outputs: raw generations and log-likelihoods, exactly. */
export function differences(a: ModelOutputs, b: ModelOutputs): string[] {
  const out: string[] = [];
  for (const suite of ['math', 'chat'] as const) {
    a[suite].forEach((g, i) => {
      const h = b[suite][i];
      if (!h || g.text !== h.text || g.hitLimit !== h.hitLimit) out.push(`${suite} item ${i}: ${JSON.stringify(g.text)} vs ${JSON.stringify(h?.text)}`);
    });
  }
  a.lm.forEach((s, i) => {
    const t = b.lm[i];
    if (!t || s.tokens !== t.tokens || s.nll !== t.nll) out.push(`lm item ${i}: nll ${s.nll} vs ${t?.nll}`);
  });
  return out;
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--models');
  const models = i >= 0 ? process.argv[i + 1].split(',') : [...ZOO_MODELS];
  const check = process.argv.includes('--check');
  let failed = false;
  for (const m of models) {
    const dir = path.join(ZOO, m);
    const t0 = performance.now();
    const ref = await ZooBackend.open(dir);
    const live = await runAll(ref, dir, FIXTURE_BATCH);
    ref.dispose();
    process.stdout.write(`${m}: reference (${ref.name}) ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    if (!check) {
      const fixture: ReferenceFixture = { backend: ref.name, batchSize: FIXTURE_BATCH, outputs: live };
      await writeFileAtomic(fixtureFile(m), JSON.stringify(fixture) + '\n');
      continue;
    }
    const fixture: ReferenceFixture | null = existsSync(fixtureFile(m)) ? JSON.parse(readFileSync(fixtureFile(m), 'utf8')) : null;
    const fast = await FastZooBackend.open(dir, { earlyStop: false });
    const got = await runAll(fast, dir, FIXTURE_BATCH);
    await fast.dispose();
    const vsFixture = fixture ? differences(fixture.outputs, live) : ['no fixture file'];
    const vsFast = differences(live, got);
    process.stdout.write(`${m}: live reference vs fixture: ${vsFixture.length} differences; fast runner vs live reference: ${vsFast.length} differences\n`);
    for (const d of [...vsFixture, ...vsFast].slice(0, 10)) process.stdout.write(`  ${d}\n`);
    failed ||= vsFixture.length + vsFast.length > 0;
  }
  if (failed) process.exit(1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
