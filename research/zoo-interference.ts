/**
 * Why merging the zoo's two fine-tunes costs the math skill: three measurements on a zoo.
 *
 * 1. Noise control: the math model plus Gaussian noise whose norm, tensor by tensor, is s times
 *    the chat task vector's. If math survives this but not the chat task vector itself, the loss
 *    comes from what the chat vector does, not from the size of the perturbation.
 * 2. Partial merges: task arithmetic of math (weight 1) and parts of the chat task vector (all of
 *    it, its attention or MLP tensors only, without the attention of chosen layers), by mergekit
 *    filters in a recipe run through mergelab's engine.
 * 3. With --train: chat fine-tunes trained differently from the same base (rows of math examples
 *    held at the base's own next-token distribution, attention frozen, ...), each merged with the
 *    zoo's math model by task arithmetic at 1/1, 1/0.8 and 1/0.5; and a base continued for 250
 *    steps with documents joined by <eos><bos> instead of newlines, both fine-tunes retrained on it.
 *
 *   npx tsx bench/zoo-interference.ts [--zoo data/zoo] [--limit N] [--train] [--jobs 2] [--out bench/out/zoo-interference.json]
 */
import path from 'node:path';
import os from 'node:os';
import { promises as fs } from 'node:fs';
import { execa } from 'execa';
import pLimit from 'p-limit';
import { readZooArrays, saveZooModel } from '../src/zoo/io.js';
import { rng, normals } from '../src/zoo/model.js';
import { UserError } from '../src/util/errors.js';
import { FULL_PLAN, CONTINUED_MIX, trainPhase, continuePhase, phaseDone, phaseHash, type PhasePlan, type ZooPlan } from '../src/zoo/train.js';
import { runRecipe } from '../src/merge/engine.js';
import { evaluateModel } from '../src/eval/evaluate.js';
import { writeFileAtomic } from '../src/util/atomic.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const NOISE_SEED = 7;

/** A chat fine-tune trained differently (a patch over FULL_PLAN.chat), or a whole retrained zoo. */
type Variant = { chat: Partial<PhasePlan> } | { plan: ZooPlan };

const EOS_JOINS: ZooPlan = {
  ...FULL_PLAN,
  base: { ...FULL_PLAN.base, stages: [...FULL_PLAN.base.stages, { steps: 250, batch: 16, seqLen: 128, restart: { lr: 1e-3, warmup: 30 }, mix: CONTINUED_MIX, separator: 'eos' }] },
  math: { ...FULL_PLAN.math, stages: FULL_PLAN.math.stages.map((st) => ({ ...st, separator: 'eos' as const })) },
  chat: { ...FULL_PLAN.chat, stages: FULL_PLAN.chat.stages.map((st) => ({ ...st, separator: 'eos' as const })) },
};

const VARIANTS: Record<string, Variant> = {
  'base continued 250 steps with <eos><bos> joins, both fine-tunes retrained': { plan: EOS_JOINS },
  'chat anchored, 1 row of 8': { chat: { baseAnchorRows: 1 } },
  'chat anchored, 2 rows of 8 (no corpus rows)': { chat: { baseAnchorRows: 2 } },
  'chat with attention of layers 0-1 frozen': { chat: { frozen: ['layers.0.self_attn', 'layers.1.self_attn'] } },
  'chat with all attention frozen': { chat: { frozen: ['self_attn'] } },
};

/** Partial merges: the chat model's weight as a mergekit parameter value (first matching filter wins). */
const PARTS: Record<string, string> = {
  'whole chat vector': '1',
  'chat attention only': '[{filter: self_attn, value: 1}, {filter: mlp, value: 0}, {value: 1}]',
  'chat MLP only': '[{filter: self_attn, value: 0}, {filter: mlp, value: 1}, {value: 1}]',
  'chat without attention of layer 0': '[{filter: layers.0.self_attn, value: 0}, {value: 1}]',
  'chat without attention of layer 1': '[{filter: layers.1.self_attn, value: 0}, {value: 1}]',
  'chat without attention of layers 0-1': '[{filter: layers.0.self_attn, value: 0}, {filter: layers.1.self_attn, value: 0}, {value: 1}]',
  'chat weight rising 0 to 1 over the layers': '[0, 1]',
  'chat weight falling 1 to 0 over the layers': '[1, 0]',
};

const zoo = path.resolve(arg('zoo') ?? 'data/zoo');
const limit = arg('limit') ? Number(arg('limit')) : undefined;
const jobs = Number(arg('jobs') ?? 2);

function recipe(chatWeight: string): string {
  return [
    'merge_method: task_arithmetic',
    'base_model: base',
    'models:',
    '  - model: math',
    '    parameters: {weight: 1}',
    '  - model: chat',
    `    parameters: {weight: ${chatWeight}}`,
    'dtype: float32',
    '',
  ].join('\n');
}

async function scores(dir: string, suites: string[]): Promise<Record<string, number>> {
  const r = await evaluateModel(dir, { suites, limit, samples: 0 });
  const out: Record<string, number> = {};
  if (r.metrics.math) out.math = r.metrics.math.exact_match_strict;
  if (r.metrics.chat) out.chat = r.metrics.chat.prompt_level_strict;
  if (r.metrics.lm) out.perplexity = r.metrics.lm.perplexity;
  return out;
}

async function mergeAndScore(tmp: string, name: string, chatDir: string, chatWeight: string, zooDir = zoo): Promise<Record<string, number>> {
  const out = path.join(tmp, name.replace(/[^a-z0-9]+/gi, '-'));
  await runRecipe({ text: recipe(chatWeight) }, { outDir: out, modelDirs: { base: path.join(zooDir, 'base'), math: path.join(zooDir, 'math'), chat: chatDir } });
  const s = await scores(out, ['math', 'chat']);
  await fs.rm(out, { recursive: true, force: true });
  return s;
}

/** The math model plus noise of `scale` times the chat task vector's norm in every tensor. */
async function noisyMath(models: Array<Awaited<ReturnType<typeof readZooArrays>>>, out: string, scale: number): Promise<void> {
  const [base, math, chat] = models;
  const r = rng(NOISE_SEED);
  const weights = new Map<string, Float32Array>();
  for (const [n, m] of math.arrays) {
    const b = base.arrays.get(n)!;
    const c = chat.arrays.get(n)!;
    const z = normals(m.length, 1, r);
    let dn = 0;
    let zn = 0;
    for (let i = 0; i < m.length; i++) {
      dn += (c[i] - b[i]) ** 2;
      zn += z[i] * z[i];
    }
    const k = scale * Math.sqrt(dn / zn);
    weights.set(n, Float32Array.from(m, (x, i) => x + k * z[i]));
  }
  await saveZooModel(out, math.config, weights);
}

/** Child mode: train one variant into DIR. */
if (arg('variant')) {
  const v = VARIANTS[arg('variant')!];
  const opts = { out: arg('dir')!, resume: true, log: () => {} };
  if ('plan' in v) {
    await continuePhase(v.plan, 'base', path.join(zoo, 'base'), opts);
    await trainPhase(v.plan, 'math', opts);
    await trainPhase(v.plan, 'chat', opts);
  } else {
    // These variants patch FULL_PLAN's chat recipe, so they need FULL_PLAN's base under them.
    if (!(await phaseDone(zoo, 'base', phaseHash(FULL_PLAN, 'base')))) {
      throw new UserError(`${path.join(zoo, 'base')} is not FULL_PLAN's base; build it with \`mergelab zoo train --plan full\` (into .cache/zoo-full) and pass --zoo .cache/zoo-full`, { file: path.join(zoo, 'base', 'training_info.json') });
    }
    await fs.symlink(path.join(zoo, 'base'), path.join(opts.out, 'base'));
    await trainPhase({ ...FULL_PLAN, chat: { ...FULL_PLAN.chat, ...v.chat } }, 'chat', opts);
  }
  process.exit(0);
}

const t0 = performance.now();
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'zoo-interference-'));
const result: Record<string, unknown> = { zoo, limit: limit ?? 'full', noiseSeed: NOISE_SEED, date: new Date().toISOString() };
const line = (s: string) => process.stdout.write(s + '\n');
const fmt = (s: Record<string, number>) => Object.entries(s).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ');

const parents = { math: await scores(path.join(zoo, 'math'), ['math', 'chat']), chat: await scores(path.join(zoo, 'chat'), ['math', 'chat']) };
result.parents = parents;
line(`parents: math model ${fmt(parents.math)}; chat model ${fmt(parents.chat)}`);

const noise: Record<string, Record<string, number>> = {};
const zooArrays = await Promise.all(['base', 'math', 'chat'].map((m) => readZooArrays(path.join(zoo, m))));
for (const s of [1, 2]) {
  const dir = path.join(tmp, `noise-${s}`);
  await noisyMath(zooArrays, dir, s);
  noise[`${s}x`] = await scores(dir, ['math']);
  line(`math model + noise at ${s}x the chat vector's norm per tensor: ${fmt(noise[`${s}x`])}`);
  await fs.rm(dir, { recursive: true, force: true });
}
result.noise = noise;

const parts: Record<string, Record<string, number>> = {};
for (const [name, w] of Object.entries(PARTS)) {
  parts[name] = await mergeAndScore(tmp, name, path.join(zoo, 'chat'), w);
  line(`task arithmetic, math 1 + ${name}: ${fmt(parts[name])}`);
}
result.partialMerges = parts;

if (process.argv.includes('--train')) {
  const names = Object.keys(VARIANTS);
  const dirs = new Map(names.map((n, i) => [n, path.join(tmp, `variant-${i}`)]));
  for (const d of dirs.values()) await fs.mkdir(d, { recursive: true });
  const self = new URL(import.meta.url).pathname;
  const pool = pLimit(jobs);
  await Promise.all(
    names.map((n) =>
      pool(async () => {
        const t = performance.now();
        await execa('npx', ['tsx', self, '--variant', n, '--dir', dirs.get(n)!], { stdio: 'inherit' });
        line(`trained variant "${n}" in ${((performance.now() - t) / 1000).toFixed(0)} s`);
      }),
    ),
  );
  const variants: Record<string, Record<string, Record<string, number>>> = {};
  const committed: Record<string, Record<string, number>> = {};
  for (const w of ['1', '0.8', '0.5']) committed[`task arithmetic 1/${w}`] = await mergeAndScore(tmp, `committed-${w}`, path.join(zoo, 'chat'), w);
  variants['the zoo as committed'] = committed;
  line(`the zoo as committed: ${Object.entries(committed).map(([k, s]) => `${k} ${fmt(s)}`).join('; ')}`);
  for (const n of names) {
    const dir = dirs.get(n)!;
    const own = 'plan' in VARIANTS[n];
    const zooDir = own ? dir : zoo;
    const chatDir = path.join(dir, 'chat');
    const v: Record<string, Record<string, number>> = { 'chat parent': await scores(chatDir, ['chat', 'lm']) };
    if (own) (v['base'] = await scores(path.join(dir, 'base'), ['math', 'chat', 'lm'])), (v['math parent'] = await scores(path.join(dir, 'math'), ['math', 'lm']));
    for (const w of ['1', '0.8', '0.5']) v[`task arithmetic 1/${w}`] = await mergeAndScore(tmp, `${n}-${w}`, chatDir, w, zooDir);
    variants[n] = v;
    line(`variant "${n}": ${Object.entries(v).map(([k, s]) => `${k} ${fmt(s)}`).join('; ')}`);
  }
  result.chatVariants = variants;
}

result.wallSec = Math.round((performance.now() - t0) / 1000);
const out = path.resolve(arg('out') ?? 'bench/out/zoo-interference.json');
await writeFileAtomic(out, JSON.stringify(result, null, 2) + '\n');
await fs.rm(tmp, { recursive: true, force: true });
line(`wrote ${out} (${result.wallSec} s)`);
