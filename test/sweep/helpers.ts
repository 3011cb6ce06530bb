import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { trainZoo } from '../../src/zoo/train.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The tiny zoo (trained in seconds), shared by the sweep test files: trained once per version of
 * the trainer into the system temp folder, published by rename so parallel test files never see
 * half a zoo.
 */
export async function tinyZoo(): Promise<string> {
  const src = await fs.readFile(path.join(REPO, 'src/zoo/train.ts'));
  const dir = path.join(os.tmpdir(), `mergelab-tiny-zoo-${createHash('sha256').update(src).digest('hex').slice(0, 12)}`);
  try {
    await fs.access(path.join(dir, 'chat', 'model.safetensors'));
    return dir;
  } catch {
    // not trained yet
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  await trainZoo({ tiny: true, out: tmp, parallel: false, log: () => {} });
  try {
    await fs.rename(tmp, dir);
  } catch {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

export async function tempDir(tag: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `mergelab-${tag}-`));
}

/** `mergelab ARGS` as a child process (the real CLI, as a user runs it). */
export function cli(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}) {
  return execa('node', ['--import', 'tsx', path.join(REPO, 'src/cli/main.ts'), ...args], { cwd: opts.cwd ?? REPO, reject: false, all: true, env: opts.env, timeout: opts.timeoutMs });
}

export async function readJsonl(file: string): Promise<Array<Record<string, unknown>>> {
  const text = await fs.readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function withoutTimings(rs: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  return rs.map(({ timings: _t, ...rest }) => rest);
}

/** Seed-shaped experiment on the tiny zoo: 27 chained + 9 stage-1-alone + 2 ties + 3 references = 41 points. */
export function seedShapedExperiment(name: string, opts: { densities?: number[]; seeds?: number[]; suites?: string[]; limit?: number } = {}): string {
  const densities = opts.densities ?? [0.2, 0.5, 0.9];
  const seeds = opts.seeds ?? [1, 2, 3];
  const stage1 = `name: math_dare
merge_method: dare_ties
base_model: \${base}
models:
  - model: \${math}
    parameters: {weight: 1, density: \${density}}
parameters: {normalize: true, int8_mask: true, rescale: inverse_density}
dtype: float32`;
  const indent = (s: string, n: number) => s.split('\n').map((l) => ' '.repeat(n) + l).join('\n');
  return `name: ${name}
models:
  base: zoo:base
  math: zoo:math
  chat: zoo:chat
seeds: [${seeds.join(', ')}]
eval:
  suites: [${(opts.suites ?? ['lm', 'chat']).join(', ')}]
  limit: ${opts.limit ?? 3}
  batch_size: 8
  samples: 1
variants:
  chained:
    recipe: |
${indent(stage1, 6)}
      ---
      merge_method: task_arithmetic
      base_model: \${base}
      models:
        - model: math_dare
          parameters: {weight: \${w_math}}
        - model: \${chat}
          parameters: {weight: \${w_chat}}
      parameters: {normalize: \${normalize}}
      dtype: float32
    sweep:
      grid:
        density: [${densities.join(', ')}]
      zip:
        - w_math: [1, 0.5, 1]
          w_chat: [1, 0.5, 0.5]
          normalize: [false, true, false]
  stage1_only:
    recipe: |
${indent(stage1, 6)}
    sweep:
      grid:
        density: [${densities.join(', ')}]
  ties:
    recipe: |
      merge_method: ties
      base_model: base
      models:
        - model: math
          parameters: {weight: \${w}, density: 0.5}
        - model: chat
          parameters: {weight: \${w}, density: 0.5}
      dtype: float32
    sweep:
      grid:
        w: [0.5, 1]
`;
}

async function dirHash(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of (await fs.readdir(dir)).sort()) {
    h.update(f + '\0');
    h.update(await fs.readFile(path.join(dir, f)));
  }
  return h.digest('hex');
}

/** A digest of each cache stage folder's files (none when the folder does not exist yet). */
export async function stageHashes(stagesDir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let names: string[] = [];
  try {
    names = await fs.readdir(stagesDir);
  } catch {
    return out;
  }
  for (const n of names) out.set(n, await dirHash(path.join(stagesDir, n)));
  return out;
}

/**
 * Two TIES points of the tiny zoo, one of which fails while merging: at density 0.001, TIES keeps
 * floor(0.001 * 16) = 0 elements of a norm weight (mergekit's "k = 0" error; the recipe is valid).
 * `extra` is appended as more top-level fields.
 */
export function failingExperiment(extra = ''): string {
  return `name: failing
models: {base: zoo:base, math: zoo:math, chat: zoo:chat}
eval: {suites: [lm], limit: 2}
recipe: |
  merge_method: ties
  base_model: base
  models:
    - model: math
      parameters: {weight: 1, density: \${density}}
    - model: chat
      parameters: {weight: 1, density: \${density}}
sweep:
  grid:
    density: [0.001, 0.5]
${extra}`;
}
