/**
 * The fast runner's thread pool: a job's rows are claimed one by one from a shared counter, so
 * threads that join or leave while it runs (the sweep lends a worker an idle core, then takes it
 * back) change which thread runs a row, never its output.
 */
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { readZooArrays, readZooTokenizer } from '../../src/zoo/io.js';
import { ropeTables } from '../../src/zoo/model.js';
import { FastModel } from '../../src/eval/runner-typed/model.js';
import { planGeneration, planScoring } from '../../src/eval/runner-typed/plan.js';
import { PoolModel, ThreadPool, type LocalPart } from '../../src/eval/runner-typed/pool.js';
import { claimOrder, generateRows, generateSteps, scoreRows, scoreSteps, sequentialClaim, type Claim, type GenOut, type GenRow } from '../../src/eval/runner-typed/run.js';
import { lmRequests, suiteRequests, ZOO } from './reference-fixture.js';

const pool = new ThreadPool(2);
afterAll(() => pool.close());

async function setup() {
  const dir = path.join(ZOO, 'math');
  const { config, arrays } = await readZooArrays(dir);
  const tok = await readZooTokenizer(dir, config);
  const rope = ropeTables(config, Array.from({ length: config.maxPositions }, (_, i) => i));
  const rows: GenRow[] = planGeneration(await suiteRequests('math', 60), (t) => tok.encode(t), 40);
  const local = new FastModel(config, arrays, rope);
  const want = new Array<GenOut>(rows.length);
  const order = claimOrder(rows.map((r) => r.ids.length + r.maxNew));
  generateRows(local, rows, sequentialClaim(order), (id) => tok.idToString(id), true, (i, o) => (want[i] = o));
  const model = new PoolModel({ config, arrays: [...arrays], rope, words: [...tok.words] });
  return { config, arrays, tok, rope, rows, local, want, order, model };
}

describe('fast runner thread pool', () => {
  it('a thread joining and leaving a running job changes no output', async () => {
    const { rows, want, order, model } = await setup();
    pool.setBudget(1);
    let reports = 0;
    const got = await pool.run<GenOut>(model, { op: 'generate', rows, earlyStop: true }, order, 'budget', () => {
      // The first progress report: lend a second thread; a later one: take it back.
      reports++;
      if (reports === 1) pool.setBudget(2);
      if (reports === 3) pool.setBudget(1);
    });
    expect(reports).toBeGreaterThan(0);
    expect(got).toEqual(want);
    expect(pool.started).toBe(2);
    // Fixed thread counts, and the same model sent once per thread.
    expect(await pool.run<GenOut>(model, { op: 'generate', rows, earlyStop: true }, order, 2)).toEqual(want);
    expect(await pool.run<GenOut>(model, { op: 'generate', rows: rows.slice(0, 5), earlyStop: true }, claimOrder([1, 1, 1, 1, 1]), 1)).toEqual(want.slice(0, 5));
  }, 300_000);

  it('scores rows on threads as in the calling thread', async () => {
    const { local, tok, model } = await setup();
    const rows = planScoring((await lmRequests(30)).map((r) => r.text), (t) => tok.encode(t), 32);
    const order = claimOrder(rows.map((r) => r.ids.length));
    const want = new Array<Float32Array>(rows.length);
    scoreRows(local, rows, sequentialClaim(order), (i, lg) => (want[i] = lg));
    const got = await pool.run<Float32Array>(model, { op: 'score', rows }, order, 2);
    expect(got.map((g) => [...g])).toEqual(want.map((w) => [...w]));
  }, 300_000);

  it('the calling thread takes part: on one thread none is started; a lent thread joins it', async () => {
    const { rows, want, order, model, local, tok } = await setup();
    const own = new ThreadPool(2);
    try {
      own.setBudget(1);
      let mine = 0;
      const counted = (claim: Claim, stopAfter = Infinity): Claim => () => {
        if (mine >= stopAfter) return undefined;
        const i = claim();
        if (i !== undefined) mine++;
        return i;
      };
      const part = (stopAfter?: number): LocalPart<GenOut> => (claim, onRow) => generateSteps(local, rows, counted(claim, stopAfter), (id) => tok.idToString(id), true, onRow);
      expect(await own.run<GenOut>(model, { op: 'generate', rows, earlyStop: true }, order, 'budget', undefined, part())).toEqual(want);
      expect(own.started).toBe(0);
      expect(mine).toBe(rows.length);
      // The budget rises while the calling thread works, which then stops claiming after 5 rows:
      // the thread started for the loan runs the rest.
      mine = 0;
      const lendOnFirstClaim: LocalPart<GenOut> = (claim, onRow) =>
        part(5)(() => {
          if (mine === 0) own.setBudget(2);
          return claim();
        }, onRow);
      expect(await own.run<GenOut>(model, { op: 'generate', rows, earlyStop: true }, order, 'budget', undefined, lendOnFirstClaim)).toEqual(want);
      expect(own.started).toBe(1);
      expect(mine).toBe(5);
      // A fixed count: the calling thread and one started thread; scoring too.
      own.setBudget(1);
      const srows = planScoring((await lmRequests(30)).map((r) => r.text), (t) => tok.encode(t), 32);
      const sorder = claimOrder(srows.map((r) => r.ids.length));
      const swant = new Array<Float32Array>(srows.length);
      scoreRows(local, srows, sequentialClaim(sorder), (i, lg) => (swant[i] = lg));
      const got = await own.run<Float32Array>(model, { op: 'score', rows: srows }, sorder, 2, undefined, (claim, onRow) => scoreSteps(local, srows, claim, onRow));
      expect(got.map((g) => [...g])).toEqual(swant.map((w) => [...w]));
      expect(own.started).toBe(1);
    } finally {
      await own.close();
    }
  }, 300_000);

  it('a failing row rejects the job, and the pool runs the next one', async () => {
    const { rows, want, order, model, config, local, tok } = await setup();
    const tooLong: GenRow = { ids: new Array(config.maxPositions + 1).fill(5), pad: 0, maxNew: 1, stop: [] };
    await expect(pool.run<GenOut>(model, { op: 'generate', rows: [tooLong], earlyStop: true }, Int32Array.of(0), 2)).rejects.toThrow(/exceed max_position_embeddings/);
    // The same row failing in the calling thread's part.
    const localPart: LocalPart<GenOut> = (claim, onRow) => generateSteps(local, [tooLong], claim, (id) => tok.idToString(id), true, onRow);
    await expect(pool.run<GenOut>(model, { op: 'generate', rows: [tooLong], earlyStop: true }, Int32Array.of(0), 2, undefined, localPart)).rejects.toThrow(/exceed max_position_embeddings/);
    expect(await pool.run<GenOut>(model, { op: 'generate', rows, earlyStop: true }, order, 2)).toEqual(want);
    pool.drop(model);
  }, 300_000);
});
