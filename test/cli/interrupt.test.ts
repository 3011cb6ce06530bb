import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readJsonl, seedShapedExperiment, tempDir, tinyZoo, withoutTimings } from '../sweep/helpers.js';
import { BIN, REPO, mergelab } from './helpers.js';

/**
 * Ctrl-C as a user presses it: `mergelab run` under a pseudo-terminal (util-linux `script`), the
 * ^C byte written to the terminal, so the line discipline sends SIGINT to the whole foreground
 * process group, workers included, exactly as in a shell.
 */

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const WRAP_OFF = '\x1b[?7l';
const WRAP_ON = '\x1b[?7h';

interface PtyRun {
  code: number | null;
  output: string;
}

/** Run `node bin/mergelab.js ARGS` on a terminal; press Ctrl-C once `when()` holds, then again after `againMs` if given. */
function runOnTerminal(args: string[], env: Record<string, string>, when: () => Promise<boolean>, againMs: number | null): Promise<PtyRun> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const cmd = ['node', BIN, ...args].map(quote).join(' ');
  // -e: exit with the command's code; -f: flush at once; the typescript file is not wanted.
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let exited = false;
  const done = new Promise<PtyRun>((resolve) => child.on('exit', (code) => ((exited = true), resolve({ code, output }))));
  void (async () => {
    while (!exited && !(await when())) await new Promise((r) => setTimeout(r, 20));
    if (exited) return;
    child.stdin.write('\x03');
    if (againMs !== null) {
      await new Promise((r) => setTimeout(r, againMs));
      if (!exited) child.stdin.write('\x03');
    }
  })();
  return done;
}

async function lines(file: string): Promise<number> {
  try {
    return (await fs.readFile(file, 'utf8')).split('\n').filter((l) => l.trim()).length;
  } catch {
    return 0;
  }
}

/** Every temporary name left under `dir`: cache/tmp entries and hidden `.NAME.tmp-PID-HEX` siblings. */
async function temps(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (/\.tmp-\d+-[0-9a-f]+$/.test(e.name) || (path.basename(d) === 'tmp' && path.basename(path.dirname(d)) === 'cache')) out.push(p);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

async function tagged(tag: string): Promise<number[]> {
  const pids: number[] = [];
  for (const p of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if ((await fs.readFile(`/proc/${p}/environ`, 'utf8')).includes(`MERGELAB_INTERRUPT_TEST=${tag}`)) pids.push(Number(p));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

function expectTerminalRestored(output: string): void {
  // The bar hid the cursor and turned wrapping off; the last word on each is "back on".
  expect(output).toContain(HIDE_CURSOR);
  expect(output).toContain(WRAP_OFF);
  expect(output.lastIndexOf(SHOW_CURSOR)).toBeGreaterThan(output.lastIndexOf(HIDE_CURSOR));
  expect(output.lastIndexOf(WRAP_ON)).toBeGreaterThan(output.lastIndexOf(WRAP_OFF));
}

describe('mergelab run interrupted on a terminal', () => {
  let zoo: string;
  let work: string;
  let expFile: string;
  let reference: Array<Record<string, unknown>>;
  const total = 13; // 2 densities x 3 weightings + 2 stage-1-alone + 2 ties + 3 references

  beforeAll(async () => {
    zoo = await tinyZoo();
    work = await tempDir('interrupt');
    expFile = path.join(work, 'ctrlc.yaml');
    await fs.writeFile(expFile, seedShapedExperiment('ctrlc', { densities: [0.3, 0.8], seeds: [1], limit: 2 }));
    const r = await mergelab(['run', expFile, '--zoo', zoo, '--reports', path.join(work, 'ref'), '--jobs', '2', '--progress', 'none', '--no-report']);
    if (r.exitCode !== 0) throw new Error(r.all);
    reference = await readJsonl(path.join(work, 'ref', 'ctrlc', 'results.jsonl'));
    expect(reference).toHaveLength(total);
  });

  it('Ctrl-C lets running tasks finish, Ctrl-C twice stops them; each time: terminal restored, saved points named, exit 130, no temporary folder; the rerun ends with the uninterrupted records', { timeout: 600_000 }, async () => {
    const reports = path.join(work, 'run');
    const results = path.join(reports, 'ctrlc', 'results.jsonl');
    const args = ['run', expFile, '--zoo', zoo, '--reports', reports, '--jobs', '2', '--no-report', '--progress', 'bar'];
    const tag = `t${process.pid}-${Date.now()}`;

    // Once: after the first points are saved, mid-sweep.
    const first = await runOnTerminal(args, { MERGELAB_INTERRUPT_TEST: tag }, async () => (await lines(results)) >= 2, null);
    const savedFirst = await lines(results);
    expect(first.code, first.output).toBe(130);
    expect(savedFirst).toBeGreaterThanOrEqual(2);
    expect(savedFirst, 'the sweep finished before Ctrl-C reached it').toBeLessThan(total);
    expectTerminalRestored(first.output);
    expect(first.output).toContain('Ctrl-C: starting no new task');
    expect(first.output).toContain(`interrupted: ${savedFirst} of ${total} points saved in ${results}; run \`mergelab ${args.join(' ')}\` again to resume`);
    expect(await temps(reports)).toEqual([]);
    // Every saved record is the uninterrupted run's.
    const byPoint = new Map(withoutTimings(reference).map((r) => [r.point, r]));
    for (const r of withoutTimings(await readJsonl(results))) expect(r).toEqual(byPoint.get(r.point));

    // Twice: the second Ctrl-C stops the running tasks instead of waiting for them.
    const second = await runOnTerminal(args, { MERGELAB_INTERRUPT_TEST: tag }, async () => (await lines(results)) >= savedFirst + 1, 50);
    const savedSecond = await lines(results);
    expect(second.code, second.output).toBe(130);
    expect(second.output).toContain('Ctrl-C again: stopping the running tasks');
    expect(second.output).toContain(`interrupted: ${savedSecond} of ${total} points saved`);
    expectTerminalRestored(second.output);
    expect(await temps(reports)).toEqual([]);
    for (let i = 0; i < 50 && (await tagged(tag)).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await tagged(tag), 'a worker outlived the interrupted run').toEqual([]);

    const rest = await mergelab(args.map((a) => (a === 'bar' ? 'none' : a)));
    expect(rest.exitCode, rest.all).toBe(0);
    expect(withoutTimings(await readJsonl(results))).toEqual(withoutTimings(reference));
  });
});
