import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Resources } from '../../graph.js';
import type { JobSettings } from '../../executorConfig.js';

/** The batch script of one job array, and the sbatch flags that request its resources. */

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The command that runs one task (`mergelab task` by a lean entry point): the same node binary and sources, by absolute path. */
export function taskCommand(): string[] {
  const sweep = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  if (import.meta.url.endsWith('.js')) return [process.execPath, path.join(sweep, 'taskMain.js')];
  const tsxPkg = createRequire(import.meta.url).resolve('tsx/package.json');
  return [process.execPath, '--import', pathToFileURL(path.join(path.dirname(tsxPkg), 'dist', 'loader.mjs')).href, path.join(sweep, 'taskMain.ts')];
}

/** The folder mergelab runs from (every node must see it too). */
export function mergelabRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
}

export function batchScript(opts: { experiment: string; group: string; expDir: string; tasks: string[]; setup: string[] }): string {
  const cmd = [...taskCommand(), opts.expDir, '--id', '"$MERGELAB_TASK_ID"'];
  return [
    '#!/bin/bash',
    `# mergelab: the ${opts.group} tasks of experiment ${opts.experiment}, one per array element;`,
    '# each runs what `mergelab task EXPDIR --id ID` runs.',
    'TASKS=(',
    ...opts.tasks.map((t) => `  ${shellQuote(t)}`),
    ')',
    'export MERGELAB_TASK_ID="${TASKS[$SLURM_ARRAY_TASK_ID]}"',
    ...opts.setup,
    `exec ${cmd.map((c, i) => (i === cmd.length - 1 ? c : shellQuote(c))).join(' ')}`,
    '',
  ].join('\n');
}

/** `0-3,5,7-9` from [0,1,2,3,5,7,8,9]. */
export function arraySpec(indices: number[]): string {
  const xs = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(i === j ? String(xs[i]) : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** sbatch flags for a task's resources under the experiment's job settings. */
export function resourceFlags(settings: JobSettings, r: Resources): string[] {
  const flags: string[] = [];
  if (settings.partition) flags.push(`--partition=${settings.partition}`);
  if (settings.account) flags.push(`--account=${settings.account}`);
  if (settings.time) flags.push(`--time=${settings.time}`);
  flags.push(`--cpus-per-task=${settings.cpusPerTask ?? r.cpus}`);
  if (settings.mem) flags.push(`--mem=${settings.mem}`);
  // Settings win; otherwise a task that needs GPUs asks for them.
  if (settings.gres) flags.push(`--gres=${settings.gres}`);
  else if (settings.gres === undefined && r.gpus > 0) flags.push(`--gres=gpu:${r.gpus}`);
  flags.push(...settings.sbatch);
  return flags;
}
