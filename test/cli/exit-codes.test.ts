import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT, exitCodeFor } from '../../src/cli/exit.js';
import { UserError, UserErrors } from '../../src/util/errors.js';
import { tinyLlamaShapes, writeTinyLlama } from '../merge/tiny-llama.js';
import { tempDir, tinyZoo } from '../sweep/helpers.js';
import { BIN, REPO, mergelab } from './helpers.js';

/**
 * One convention for every command: 0 ok, 1 a problem with the user's input (usage included),
 * 2 an internal error, 130 stopped by SIGINT/SIGTERM. Each command is run as a user runs it.
 */

const SEED = (dir: string) => `name: math_dare
merge_method: dare_ties
base_model: ${dir}/base
models:
  - model: ${dir}/math
    parameters: {weight: 1, density: 0.3}
dtype: float32
---
merge_method: task_arithmetic
base_model: ${dir}/base
models:
  - model: math_dare
    parameters: {weight: 1}
  - model: ${dir}/chat
    parameters: {weight: 1}
dtype: float32
`;

/** Entries a stopped command may leave behind: `.NAME.tmp-PID-HEX` and `.NAME.stage-...` siblings. */
async function hidden(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => /\.tmp-\d+-[0-9a-f]+$/.test(n) || /\.stage-/.test(n));
}

/**
 * Start `mergelab ARGS`, send SIGTERM (`times` times) once its output shows `ready`, and wait. A
 * command that ends before that is returned as it ended, so the caller's exit-code assertion
 * shows its output.
 */
async function stopWhen(args: string[], ready: RegExp, times = 1) {
  const child = execa('node', [BIN, ...args], { cwd: REPO, reject: false, all: true });
  let seen = '';
  let ended = false;
  await new Promise<void>((resolve) => {
    child.all!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (ready.test(seen)) resolve();
    });
    void child.then(() => {
      ended = true;
      resolve();
    });
  });
  for (let i = 0; i < times && !ended; i++) {
    // process.kill, not child.kill: execa's kill would follow up with SIGKILL after 5 s, which a
    // loaded machine can reach while the command is still winding down.
    process.kill(child.pid!, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 30));
  }
  return child;
}

/** Processes whose parent is `pid`. */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const p of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const stat = await fs.readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    if (stat && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(p));
  }
  return out;
}

let zoo: string;
let work: string;
beforeAll(async () => {
  zoo = await tinyZoo();
  work = await tempDir('exit-codes');
});

describe('exit codes', () => {
  it('maps errors: usage and user mistakes 1, --help and --version 0, anything else 2', () => {
    expect(exitCodeFor(new CommanderError(1, 'commander.unknownCommand', 'x'))).toBe(EXIT.input);
    expect(exitCodeFor(new CommanderError(0, 'commander.helpDisplayed', 'x'))).toBe(EXIT.ok);
    expect(exitCodeFor(new UserError('bad flag'))).toBe(EXIT.input);
    expect(exitCodeFor(new UserErrors(['a', 'b']))).toBe(EXIT.input);
    expect(exitCodeFor(new TypeError('x is undefined'))).toBe(EXIT.internal);
    expect(exitCodeFor('thrown string')).toBe(EXIT.internal);
    expect(new Command().name()).toBe(''); // commander loaded as the CLI loads it
  });

  it('the program: --help 0, an unknown command or flag 1, a missing required flag 1', async () => {
    const help = await mergelab(['--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('Exit codes: 0 ok, 1 a problem with your input, 2 an internal error, 130 interrupted');
    expect((await mergelab(['nosuch'])).exitCode).toBe(1);
    expect((await mergelab(['run', 'x.yaml', '--no-such-flag'])).exitCode).toBe(1);
    // The output folder is required, as mergekit-yaml's OUT_PATH or as --out.
    const noOut = await mergelab(['merge', 'x.yaml']);
    expect(noOut.exitCode).toBe(1);
    expect(noOut.stderr).toBe('mergelab: no output folder: give OUT_PATH after the recipe (as mergekit-yaml takes it) or --out DIR');
    const mergeHelp = await mergelab(['merge', '--help']);
    expect(mergeHelp.stdout).toContain('Usage: mergelab merge <recipe> <out_path> [options]  (or <recipe> --out <dir> [options])');
    const runHelp = (await mergelab(['run', '--help'])).stdout.replace(/\s+/g, ' ');
    // One default for --jobs, the one that applies.
    expect(runHelp.match(/-j, --jobs <n>.*?(?=--keep-models)/)![0].match(/default/g)).toHaveLength(1);
  });

  it('validate: 0 ok, 1 with problems', async () => {
    const recipe = path.join(work, 'seed.yaml');
    await fs.writeFile(recipe, SEED(zoo));
    expect((await mergelab(['validate', recipe])).exitCode).toBe(0);
    await fs.writeFile(path.join(work, 'bad.yaml'), SEED(zoo).replace('dare_ties', 'dare_tie'));
    expect((await mergelab(['validate', path.join(work, 'bad.yaml')])).exitCode).toBe(1);
  });

  it('merge: 0 ok, 1 for a bad recipe, 130 when stopped, with nothing half-written', async () => {
    const out = path.join(work, 'merged');
    const ok = await mergelab(['merge', path.join(work, 'seed.yaml'), '--out', out]);
    expect(ok.exitCode, ok.all).toBe(0);
    const bad = await mergelab(['merge', path.join(work, 'bad.yaml'), '--out', path.join(work, 'bad-out')]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/unknown merge_method "dare_tie".*\(did you mean 'dare_ties'\?\)/);
    expect(bad.stderr).not.toMatch(/^\s+at /m);

    // Models with enough tensors (48 layers) that SIGTERM lands while the first stage is merging.
    const big = path.join(work, 'big');
    const shapes = tinyLlamaShapes({ layers: 48 });
    await writeTinyLlama(path.join(big, 'base'), { seed: 1, shapes });
    await writeTinyLlama(path.join(big, 'math'), { seed: 2, baseSeed: 1, shapes });
    await writeTinyLlama(path.join(big, 'chat'), { seed: 3, baseSeed: 1, shapes });
    await fs.writeFile(path.join(big, 'seed.yaml'), SEED(big));
    const stopped = await stopWhen(['merge', path.join(big, 'seed.yaml'), '--out', path.join(big, 'out')], /stage 1\/2/);
    expect(stopped.exitCode, stopped.all).toBe(130);
    expect(stopped.stderr).toContain(`interrupted: nothing written to ${path.join(big, 'out')}`);
    await expect(fs.access(path.join(big, 'out'))).rejects.toThrow();
    expect(await hidden(big)).toEqual([]);
  });

  it('eval: 0 ok, 1 for a missing model, 130 when stopped, its delegated command stopped and its task files removed', async () => {
    expect((await mergelab(['eval', path.join(zoo, 'base'), '--suite', 'lm', '--limit', '1'])).exitCode).toBe(0);
    expect((await mergelab(['eval', path.join(work, 'no-model'), '--suite', 'lm', '--limit', '1'])).exitCode).toBe(1);
    // A delegated evaluation that takes long (a real checkpoint behind a command): stopped while it runs.
    const slow = path.join(work, 'slow-eval.sh');
    await fs.writeFile(slow, '#!/bin/sh\nexec sleep 300\n', { mode: 0o755 });
    const tmpBefore = (await fs.readdir(os.tmpdir())).filter((n) => n.startsWith('mergelab-eval-'));
    const child = execa('node', [BIN, 'eval', 'some-model', '--suite', 'lm', '--limit', '2', '--delegate-cmd', `${slow} {model} {task_file}`], { cwd: REPO, reject: false, all: true });
    const sleeping = async () => (await childrenOf(child.pid!)).length > 0;
    while (child.exitCode === null && !(await sleeping())) await new Promise((r) => setTimeout(r, 20));
    process.kill(child.pid!, 'SIGTERM');
    const stopped = await child;
    expect(stopped.exitCode, stopped.all).toBe(130);
    expect(stopped.stderr).toContain('interrupted: evaluation of some-model stopped; nothing was saved');
    expect((await fs.readdir(os.tmpdir())).filter((n) => n.startsWith('mergelab-eval-') && !tmpBefore.includes(n))).toEqual([]);
  });

  it('run: 1 for a bad experiment, 0 for a dry run', async () => {
    const exp = path.join(work, 'exp.yaml');
    await fs.writeFile(exp, `name: e\nmodels: {base: zoo:base, math: zoo:math}\neval: {suites: [lm], limit: 1}\nrecipe: |\n  merge_method: task_arithmetic\n  base_model: \${base}\n  models:\n    - model: \${math}\n      parameters: {weight: 1}\n`);
    const dry = await mergelab(['run', exp, '--zoo', zoo, '--dry-run', '--reports', path.join(work, 'reports')]);
    expect(dry.exitCode, dry.all).toBe(0);
    await fs.writeFile(path.join(work, 'bad-exp.yaml'), (await fs.readFile(exp, 'utf8')).replace('[lm]', '[lmm]'));
    const bad = await mergelab(['run', path.join(work, 'bad-exp.yaml'), '--zoo', zoo, '--reports', path.join(work, 'reports')]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain("(did you mean 'lm'?)");
  });

  it('report: 1 for an unknown experiment, 0 ok, 130 when stopped twice', async () => {
    expect((await mergelab(['report', path.join(work, 'nothing-here')])).exitCode).toBe(1);
    const ok = await mergelab(['report', 'seed-repro', '--out', path.join(work, 'report'), '--no-svg']);
    expect(ok.exitCode, ok.all).toBe(0);
    const stopped = await stopWhen(['report', 'seed-repro', '--out', path.join(work, 'report2')], /^report: /m, 2);
    expect(stopped.exitCode, stopped.all).toBe(130);
    expect(stopped.stderr).toContain('interrupted: the report in');
    expect(await hidden(path.join(work, 'report2')).catch(() => [])).toEqual([]);
  });

  it('zoo: stats 0 and 1; train 130 when stopped, keeping its checkpoints and no temporary folder', async () => {
    expect((await mergelab(['zoo', 'stats', '--dir', zoo])).exitCode).toBe(0);
    expect((await mergelab(['zoo', 'stats', '--dir', path.join(work, 'no-zoo')])).exitCode).toBe(1);
    const out = path.join(work, 'zoo');
    const stopped = await stopWhen(['zoo', 'train', '--tiny', '--out', out], /\[base\]/);
    expect(stopped.exitCode, stopped.all).toBe(130);
    expect(stopped.stderr).toContain(`--out ${out} --resume\` to continue`);
    const left: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
        if (/\.tmp-\d+-[0-9a-f]+$/.test(e.name)) left.push(path.join(d, e.name));
        if (e.isDirectory()) await walk(path.join(d, e.name));
      }
    };
    await walk(out);
    expect(left).toEqual([]);
  });
});
