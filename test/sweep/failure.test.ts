import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, failingExperiment, readJsonl, tempDir, tinyZoo } from './helpers.js';

describe('a failing point', () => {
  it('is recorded with status failed and its error while the other points go on', async () => {
    const zoo = await tinyZoo();
    const work = await tempDir('sweep-fail');
    const file = path.join(work, 'failing.yaml');
    await fs.writeFile(file, failingExperiment());
    const reports = path.join(work, 'reports');
    const r = await cli(['run', file, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--progress', 'lines', '--no-report']);
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toMatch(/FAILED failing density=0\.001: merge of stage stage1 failed: .*keeps floor\(0\.001 \* 16\) = 0 elements/);
    expect(r.all).toMatch(/failed: 1\b/);
    const rs = await readJsonl(path.join(reports, 'failing', 'results.jsonl'));
    expect(rs.map((x) => [x.point, x.status])).toEqual([
      ['ref base', 'ok'],
      ['ref math', 'ok'],
      ['ref chat', 'ok'],
      ['failing density=0.001', 'failed'],
      ['failing density=0.5', 'ok'],
    ]);
    expect(rs[3].error).toMatch(/^merge of stage stage1 failed: /);
    expect(rs[3].metrics).toEqual({});
    // Failures are not cached: the next run tries the point again and records the same failure.
    const again = await cli(['run', file, '--zoo', zoo, '--reports', reports, '--jobs', '1', '--progress', 'none', '--no-report']);
    expect(again.all).toMatch(/merges performed: 0\b/);
    expect(await readJsonl(path.join(reports, 'failing', 'results.jsonl'))).toEqual(rs);
  });
});
