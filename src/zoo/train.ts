/**
 * Trains the zoo: pretrain `base` on the corpus of src/data/pretrain.ts (a micro-batched phase
 * computes part of each batch in a helper process, so both cores work), then fine-tune `math` and
 * `chat` from it (two child processes, one per core). Everything random comes from the plan's
 * seed: initial weights, and each step's batch is drawn from a generator seeded by (seed, phase,
 * step), so a resumed run sees exactly the batches an uninterrupted one would.
 *
 * Fine-tunes are deliberately small nudges (low learning rate, few steps, no weight decay, some
 * pretraining text mixed into every batch): that is what real supervised fine-tunes are, and a
 * zoo whose fine-tunes move the weights far makes every merge collapse.
 */
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { initBackend, initWeights, lossFn, trainingView, parameterCount, tensorShapes, rng, tf, type ZooConfig, type Weights } from './model.js';
import { ZooTokenizer, CHAR_VOCAB_SIZE, BOS_ID, EOS_ID, PAD_ID } from './tokenizer.js';
import { saveZooModel, readZooArrays, zooModelFromWeights } from './io.js';
import { openCheckpoint } from '../checkpoint/reader.js';
import { CheckpointWriter } from '../checkpoint/writer.js';
import { generateGreedy } from './generate.js';
import { combineGrads, disposeRopeCache, microGrads, ropeFor, splitBatch, type RopeCache } from './microGrads.js';
import { GradHelper } from './gradHelper.js';
import { pretrainDocument, allFacts, keptCorpusMix, type CorpusMix } from '../data/pretrain.js';
import { mathPhrasings, mathProblems } from '../data/math.js';
import { chatPhrasings, chatPrompts } from '../data/chat.js';
import { fnv1a } from '../data/split.js';
import { UserError } from '../util/errors.js';

export type PhaseName = 'base' | 'math' | 'chat';

export interface Stage {
  /** Steps in this stage. */
  steps: number;
  batch: number;
  seqLen: number;
  /**
   * Start a new learning-rate cycle here (warmup to this peak, cosine to minLrFrac over the rest
   * of the phase or until the next restart) with fresh Adam moments: continued pretraining.
   */
  restart?: { lr: number; warmup: number };
  /** Corpus mix for this stage's pretraining rows (default DEFAULT_MIX). */
  mix?: CorpusMix;
}

export interface PhasePlan {
  stages: Stage[];
  lr: number;
  warmup: number;
  /** Cosine decays to this fraction of lr. */
  minLrFrac: number;
  weightDecay: number;
  /** Fine-tunes: share of rows in a batch that are task examples (the rest is pretraining text). */
  taskFrac: number;
  /** Task examples to draw from (fine-tunes). */
  taskExamples: number;
  /**
   * Fine-tunes: decoupled decay of each matrix toward the base's value instead of toward zero
   * (L2-SP): the update gains decayToBase * (w - w_base), so what the gradient only jitters falls
   * back and the weight budget (median delta under 5%) goes to what the task keeps pushing.
   */
  decayToBase?: number;
  /**
   * Split each batch into this many row groups whose gradients are averaged by loss tokens
   * (microGrads.ts), so that a second process can compute one: the pretraining then uses both
   * cores. Part of the recipe: the weights are the same with or without the helper process.
   */
  microBatches?: number;
}

export interface ZooPlan {
  name: string;
  seed: number;
  model: ZooConfig;
  base: PhasePlan;
  math: PhasePlan;
  chat: PhasePlan;
  /** Seconds between resumable checkpoints. */
  checkpointEverySec: number;
  logEvery: number;
  /** Steps between knowledge probes during pretraining (0 = never). */
  probeEvery: number;
}

/** Requests told as prose and stories worked one equation per line, so the fine-tunes only have to teach the formats. */
const CONTINUED_MIX: CorpusMix = { facts: 0.2, stories: 0.1, words: 0.1, prose: 0.02, reversals: 0.08, requests: 0.3, worked: 0.2 };

/**
 * The committed zoo's plan (named after its third cycle's copy documents). The base pretrains in
 * three learning-rate cycles, every batch split in two micro-batches so that it trains on both
 * cores; then math and chat fine-tune from it side by side. Its hash per phase is in each model's
 * training_info.json, and the tests check that the committed folders were trained by it.
 */
export const COPY_PLAN: ZooPlan = {
  name: 'copy',
  seed: 1,
  model: { vocabSize: CHAR_VOCAB_SIZE, hiddenSize: 128, intermediateSize: 384, numLayers: 4, numHeads: 4, numKvHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositions: 512 },
  base: {
    stages: [
      // Short sequences first (cheaper attention), then long enough for a whole math problem.
      { steps: 2000, batch: 16, seqLen: 128 },
      { steps: 500, batch: 6, seqLen: 320 },
      // Continued pretraining on the formats the fine-tunes will ask for.
      { steps: 500, batch: 16, seqLen: 128, restart: { lr: 1e-3, warmup: 30 }, mix: CONTINUED_MIX },
      { steps: 250, batch: 6, seqLen: 320, mix: CONTINUED_MIX },
      // A quarter of copy documents with the rest of the corpus kept: the fine-tunes of this base
      // can be merged, those of the base without this cycle cannot (research/zoo-history.md).
      { steps: 1200, batch: 16, seqLen: 128, restart: { lr: 2e-3, warmup: 30 }, mix: keptCorpusMix(0.25) },
    ],
    lr: 2e-3,
    warmup: 100,
    minLrFrac: 0.05,
    weightDecay: 0.05,
    taskFrac: 0,
    taskExamples: 0,
    microBatches: 2,
  },
  // Step counts are bounded by the weight budget: a longer fine-tune moves the median tensor by more than 5%.
  math: { stages: [{ steps: 1000, batch: 8, seqLen: 0 }], lr: 2e-4, warmup: 20, minLrFrac: 0.1, weightDecay: 0, taskFrac: 0.75, taskExamples: 10_000 },
  // A wide batch (less sampling noise per step) at twice math's lr, pulled toward the base to stay in the budget.
  chat: { stages: [{ steps: 800, batch: 32, seqLen: 0 }], lr: 4e-4, warmup: 20, minLrFrac: 0.1, weightDecay: 0, taskFrac: 0.75, taskExamples: 10_000, decayToBase: 10 },
  checkpointEverySec: 180,
  logEvery: 25,
  probeEvery: 200,
};

/** A miniature zoo (d16, one layer) trained in seconds, for tests. */
export const TINY_PLAN: ZooPlan = {
  name: 'tiny',
  seed: 1,
  model: { vocabSize: CHAR_VOCAB_SIZE, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositions: 512 },
  base: { stages: [{ steps: 20, batch: 4, seqLen: 32 }], lr: 3e-3, warmup: 4, minLrFrac: 0.1, weightDecay: 0.05, taskFrac: 0, taskExamples: 0 },
  math: { stages: [{ steps: 6, batch: 2, seqLen: 0 }], lr: 1e-4, warmup: 2, minLrFrac: 0.1, weightDecay: 0, taskFrac: 0.5, taskExamples: 64 },
  chat: { stages: [{ steps: 6, batch: 2, seqLen: 0 }], lr: 1e-4, warmup: 2, minLrFrac: 0.1, weightDecay: 0, taskFrac: 0.5, taskExamples: 64 },
  checkpointEverySec: 3600,
  logEvery: 5,
  probeEvery: 0,
};

export const ZOO_PLANS = { tiny: TINY_PLAN, copy: COPY_PLAN } as const;
export type ZooPlanName = keyof typeof ZOO_PLANS;

/**
 * Identity of one phase's training: what determines its weights. A fine-tune's hash does not
 * cover the other fine-tune, so tuning one never invalidates the other or the base.
 */
export function phaseHash(plan: ZooPlan, phase: PhaseName): string {
  // A fine-tune's examples come from its task's train phrasings, so a new phrasing is a new phase.
  const phrasings = phase === 'math' ? fnv1a(JSON.stringify(mathPhrasings('train'))) : phase === 'chat' ? fnv1a(JSON.stringify(chatPhrasings('train'))) : undefined;
  const key = { seed: plan.seed, model: plan.model, phase, plan: plan[phase], base: phase === 'base' ? undefined : plan.base, phrasings };
  return fnv1a(JSON.stringify(key)).toString(16);
}

const TOKENIZER = new ZooTokenizer();

/** The tokenizer every plan trains with: characters, checked against the plan's vocabulary size. */
export function planTokenizer(plan: ZooPlan): ZooTokenizer {
  if (TOKENIZER.vocabSize !== plan.model.vocabSize) throw new UserError(`zoo plan ${plan.name}: model.vocabSize ${plan.model.vocabSize} does not match its tokenizer's ${TOKENIZER.vocabSize}`);
  return TOKENIZER;
}

// ---------------------------------------------------------------------------------------------
// Batches

export interface Batch {
  ids: Int32Array;
  targets: Int32Array;
  lossMask: Float32Array;
  B: number;
  T: number;
  tokens: number;
  /** The pretraining documents its rows hold (the last of a row possibly cut): what a held-out set must avoid. */
  documents: string[];
}

/** A row of T+1 tokens: <bos> then whole documents joined by newlines, cut at the end. */
function pretrainRow(tok: ZooTokenizer, r: () => number, T: number, mix: CorpusMix | undefined, documents: string[]): number[] {
  const row = [BOS_ID];
  const join = tok.encode('\n');
  while (row.length < T + 1) {
    const doc = pretrainDocument(r, mix);
    documents.push(doc);
    for (const id of tok.encode(doc)) row.push(id);
    row.push(...join);
  }
  return row.slice(0, T + 1);
}

export interface TaskExample {
  prompt: number[];
  target: number[];
}

export function mathExample(question: string, answer: string): { prompt: string; target: string } {
  return { prompt: `Question: ${question}\nAnswer:`, target: ` ${answer}` };
}

export function chatExample(prompt: string, response: string): { prompt: string; target: string } {
  return { prompt: `<|user|>${prompt}\n<|assistant|>`, target: response };
}

/** A fine-tune's task examples as token ids (exported for replicas of the trainer). */
export function taskExamples(phase: PhaseName, n: number, seed: number, tok: ZooTokenizer = new ZooTokenizer()): TaskExample[] {
  const raw =
    phase === 'math'
      ? mathProblems('train', n, seed).map((p) => mathExample(p.question, p.answer))
      : chatPrompts('train', n, seed).map((p) => chatExample(p.prompt, p.response));
  return raw.map((e) => ({ prompt: [BOS_ID, ...tok.encode(e.prompt)], target: [...tok.encode(e.target), EOS_ID] }));
}

function stepSeed(seed: number, phase: PhaseName, step: number): number {
  return fnv1a(`${seed}:${phase}:${step}`);
}

function stageAt(p: PhasePlan, step: number): Stage {
  let s = step;
  for (const st of p.stages) {
    if (s < st.steps) return st;
    s -= st.steps;
  }
  return p.stages[p.stages.length - 1];
}

export function totalSteps(p: PhasePlan): number {
  return p.stages.reduce((s, st) => s + st.steps, 0);
}

/** The batch of one training step: the trainer's only source of rows, also read by the lm eval set's leakage check. */
export function makeBatch(plan: ZooPlan, phase: PhaseName, step: number, examples: TaskExample[]): Batch {
  const p = plan[phase];
  const tok = planTokenizer(plan);
  const st = stageAt(p, step);
  const r = rng(stepSeed(plan.seed, phase, step));
  const rows: Array<{ toks: number[]; lossFrom: number; lossTo: number }> = [];
  const documents: string[] = [];
  let T = st.seqLen;
  if (phase === 'base') {
    for (let b = 0; b < st.batch; b++) rows.push({ toks: pretrainRow(tok, r, T, st.mix, documents), lossFrom: 0, lossTo: T });
  } else {
    const nTask = Math.max(1, Math.round(st.batch * p.taskFrac));
    const picked: TaskExample[] = [];
    for (let b = 0; b < nTask; b++) picked.push(examples[Math.floor(r() * examples.length)]);
    // Round the length up so few distinct shapes occur (tfjs caches per shape).
    T = Math.ceil(Math.max(...picked.map((e) => e.prompt.length + e.target.length - 1)) / 16) * 16;
    // An example padded to T+1 tokens; target index j predicts toks[j+1], so the loss on the
    // answer starts at the prompt's last index.
    for (const e of picked) {
      const toks = [...e.prompt, ...e.target];
      const lossTo = toks.length - 1;
      while (toks.length < T + 1) toks.push(PAD_ID);
      rows.push({ toks, lossFrom: e.prompt.length - 1, lossTo });
    }
    for (let b = nTask; b < st.batch; b++) rows.push({ toks: pretrainRow(tok, r, T, undefined, documents), lossFrom: 0, lossTo: T });
  }
  const B = rows.length;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const lossMask = new Float32Array(B * T);
  let tokens = 0;
  rows.forEach((row, b) => {
    for (let j = 0; j < T; j++) {
      ids[b * T + j] = row.toks[j];
      targets[b * T + j] = row.toks[j + 1];
      if (j >= row.lossFrom && j < row.lossTo) {
        lossMask[b * T + j] = 1;
        tokens++;
      }
    }
  });
  return { ids, targets, lossMask, B, T, tokens, documents };
}

// ---------------------------------------------------------------------------------------------
// Optimiser state and checkpoints

interface TrainState {
  step: number;
  params: Map<string, tf.Variable>;
  m: Map<string, tf.Variable>;
  v: Map<string, tf.Variable>;
  lossEma: number | null;
  elapsedSec: number;
}

interface Segment {
  start: number;
  end: number;
  lr: number;
  warmup: number;
}

/** The phase's learning-rate cycles: the first uses the phase's lr, each restart stage opens another. */
function segments(p: PhasePlan): Segment[] {
  const segs: Segment[] = [{ start: 0, end: 0, lr: p.lr, warmup: p.warmup }];
  let at = 0;
  for (const st of p.stages) {
    if (st.restart && at > 0) segs.push({ start: at, end: 0, lr: st.restart.lr, warmup: st.restart.warmup });
    at += st.steps;
  }
  segs.forEach((sg, i) => (sg.end = i + 1 < segs.length ? segs[i + 1].start : at));
  return segs;
}

function segmentAt(p: PhasePlan, step: number): Segment {
  const segs = segments(p);
  return [...segs].reverse().find((sg) => step >= sg.start) ?? segs[0];
}

export function lrAt(p: PhasePlan, step: number): number {
  const sg = segmentAt(p, step);
  const k = step - sg.start;
  if (k < sg.warmup) return (sg.lr * (k + 1)) / sg.warmup;
  const t = Math.min(1, (k - sg.warmup) / Math.max(1, sg.end - sg.start - sg.warmup));
  return sg.lr * (p.minLrFrac + (1 - p.minLrFrac) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

/**
 * Learning rate of a step, the first step of its learning-rate cycle (Adam's bias correction counts
 * from there) and whether Adam's moments restart at this step (a continued-pretraining cycle).
 */
export function stepSchedule(p: PhasePlan, step: number): { lr: number; cycleStart: number; restartMoments: boolean } {
  const sg = segmentAt(p, step);
  return { lr: lrAt(p, step), cycleStart: sg.start, restartMoments: step === sg.start && sg.start > 0 };
}

function newState(cfg: ZooConfig, arrays: Map<string, Float32Array>): TrainState {
  const params = new Map<string, tf.Variable>();
  const m = new Map<string, tf.Variable>();
  const v = new Map<string, tf.Variable>();
  for (const [name, shape] of tensorShapes(cfg)) {
    params.set(name, tf.variable(tf.tensor(arrays.get(name)!, shape), true));
    m.set(name, tf.variable(tf.zeros(shape), false));
    v.set(name, tf.variable(tf.zeros(shape), false));
  }
  return { step: 0, params, m, v, lossEma: null, elapsedSec: 0 };
}

function disposeState(s: TrainState): void {
  for (const map of [s.params, s.m, s.v]) for (const t of map.values()) t.dispose();
}

async function saveState(dir: string, cfg: ZooConfig, s: TrainState, hash: string): Promise<void> {
  const w = await CheckpointWriter.create(dir, { dtype: 'F32' });
  for (const [name, shape] of tensorShapes(cfg)) {
    await w.addF32(name, shape, (await s.params.get(name)!.data()) as Float32Array);
    await w.addF32(`adam_m.${name}`, shape, (await s.m.get(name)!.data()) as Float32Array);
    await w.addF32(`adam_v.${name}`, shape, (await s.v.get(name)!.data()) as Float32Array);
  }
  await w.finish({ extraFiles: { 'state.json': JSON.stringify({ step: s.step, plan: hash, lossEma: s.lossEma, elapsedSec: s.elapsedSec }) + '\n' } });
}

async function loadState(dir: string, cfg: ZooConfig, hash: string): Promise<TrainState | null> {
  const stateFile = path.join(dir, 'state.json');
  if (!existsSync(stateFile)) return null;
  const meta = JSON.parse(await fs.readFile(stateFile, 'utf8')) as { step: number; plan: string; lossEma: number | null; elapsedSec?: number };
  if (meta.plan !== hash) return null;
  const ck = await openCheckpoint(dir);
  try {
    const arrays = new Map<string, Float32Array>();
    for (const [name] of tensorShapes(cfg)) arrays.set(name, await ck.readF32(name));
    const s = newState(cfg, arrays);
    for (const [name] of tensorShapes(cfg)) {
      s.m.get(name)!.assign(tf.tensor(await ck.readF32(`adam_m.${name}`), s.m.get(name)!.shape));
      s.v.get(name)!.assign(tf.tensor(await ck.readF32(`adam_v.${name}`), s.v.get(name)!.shape));
    }
    s.step = meta.step;
    s.lossEma = meta.lossEma;
    s.elapsedSec = meta.elapsedSec ?? 0;
    return s;
  } finally {
    await ck.close();
  }
}

// ---------------------------------------------------------------------------------------------
// One phase

export interface PhaseOptions {
  out: string;
  resume: boolean;
  log: (line: string) => void;
  /** Show a cli-progress bar (TTY) instead of log lines. */
  bar?: boolean;
  /** Save a resumable checkpoint and return after this many steps (simulates an interrupted run). */
  stopAfter?: number;
  /** Compute a micro-batched phase's row groups in helper processes, one per extra group (default true). */
  gradHelpers?: boolean;
}

const ADAM_B1 = 0.9;
const ADAM_B2 = 0.98;
const ADAM_EPS = 1e-8;
const CLIP = 1.0;

function trainedNames(s: TrainState): string[] {
  return [...s.params.keys()];
}

/** A micro-batched step's gradient: group 0 here, the others in the helpers (or here, without them). */
async function microBatchedGrads(plan: ZooPlan, phase: PhaseName, s: TrainState, batch: Batch, cache: RopeCache, helpers: GradHelper[]): Promise<{ loss: number; grads: Float32Array[] }> {
  const names = trainedNames(s);
  const vars = names.map((n) => s.params.get(n)!);
  const groups = splitBatch(batch, plan[phase].microBatches ?? 1);
  if (helpers.length === 0) return combineGrads(groups.map((mb) => microGrads(plan.model, names, vars, mb, cache)));
  const weights = vars.map((v) => (v.dataSync() as Float32Array).slice());
  const remote = await Promise.all(groups.slice(1).map((mb, i) => helpers[i].startGrads(weights, mb)));
  const local = microGrads(plan.model, names, vars, groups[0], cache);
  return combineGrads([local, ...(await Promise.all(remote.map((r) => r.result)))]);
}

/** `base`: the base model's weights, where decayToBase pulls a fine-tune toward. */
function trainStep(plan: ZooPlan, phase: PhaseName, s: TrainState, batch: Batch, cache: RopeCache, base: Map<string, tf.Tensor> | null, precomputed?: { loss: number; grads: Float32Array[] }): number {
  const cfg = plan.model;
  const p = plan[phase];
  const rm = ropeFor(cfg, cache, batch.T);
  const names = trainedNames(s);
  const { lr, cycleStart, restartMoments } = stepSchedule(p, s.step);
  if (restartMoments) {
    for (const n of names) {
      s.m.get(n)!.assign(tf.zerosLike(s.m.get(n)!));
      s.v.get(n)!.assign(tf.zerosLike(s.v.get(n)!));
    }
  }
  const t = s.step - cycleStart + 1;
  const loss = tf.tidy(() => {
    if (precomputed) {
      const gs = names.map((n, i) => tf.tensor(precomputed.grads[i], s.params.get(n)!.shape));
      adamUpdate(p, s, names, gs, lr, t, base);
      return precomputed.loss;
    }
    const ids = tf.tensor2d(batch.ids, [batch.B, batch.T], 'int32');
    const targets = tf.tensor2d(batch.targets, [batch.B, batch.T], 'int32');
    const mask = tf.tensor1d(batch.lossMask);
    const view = trainingView(s.params as unknown as Weights);
    const { value, grads } = tf.variableGrads(() => lossFn(cfg, view, ids, targets, mask, rm, rm.mask), names.map((n) => s.params.get(n)!));
    adamUpdate(p, s, names, names.map((n) => grads[s.params.get(n)!.name]), lr, t, base);
    return value.dataSync()[0];
  });
  s.step++;
  return loss;
}

/** Clips the gradient to norm CLIP and takes an AdamW step (t counts from the cycle's start); call inside tidy. */
function adamUpdate(p: PhasePlan, s: TrainState, names: string[], gs: tf.Tensor[], lr: number, t: number, base: Map<string, tf.Tensor> | null): void {
  const gnorm = Math.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g)))).dataSync()[0]);
  const scale = gnorm > CLIP ? CLIP / gnorm : 1;
  const bc1 = 1 - Math.pow(ADAM_B1, t);
  const bc2 = 1 - Math.pow(ADAM_B2, t);
  names.forEach((n, i) => {
    const g = tf.mul(gs[i], scale);
    const w = s.params.get(n)!;
    const m = tf.add(tf.mul(s.m.get(n)!, ADAM_B1), tf.mul(g, 1 - ADAM_B1));
    const v = tf.add(tf.mul(s.v.get(n)!, ADAM_B2), tf.mul(tf.square(g), 1 - ADAM_B2));
    s.m.get(n)!.assign(m);
    s.v.get(n)!.assign(v);
    let upd = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), ADAM_EPS));
    // Decoupled weight decay on matrices only (norm gains stay at their scale).
    if (p.weightDecay > 0 && w.shape.length === 2) upd = tf.add(upd, tf.mul(w, p.weightDecay));
    const toBase = p.decayToBase ?? 0;
    if (toBase > 0 && w.shape.length === 2) {
      if (!base) throw new Error('decayToBase without base weights: trainPhase loads them for every fine-tune that sets it');
      upd = tf.add(upd, tf.mul(tf.sub(w, base.get(n)!), toBase));
    }
    w.assign(tf.sub(w, tf.mul(upd, lr)));
  });
}

/** Knowledge probe: greedy-completes arithmetic facts and word reversals the corpus teaches. */
async function probeKnowledge(plan: ZooPlan, s: TrainState): Promise<{ facts: number; reverse: number }> {
  const model = zooModelFromWeights(plan.model, s.params as unknown as Weights, '<memory>', planTokenizer(plan));
  const r = rng(12345);
  const facts = allFacts();
  const sample = Array.from({ length: 120 }, () => facts[Math.floor(r() * facts.length)]);
  const prompts = sample.map((f) => f.slice(0, f.indexOf('=') + 1));
  const outs = await generateGreedy(model, prompts, { maxNewTokens: 4, batchSize: 60 });
  const factAcc = outs.filter((o, i) => o.startsWith(sample[i].slice(sample[i].indexOf('=') + 1)) && !/\d/.test(o.charAt(sample[i].length - sample[i].indexOf('=') - 1))).length / sample.length;
  const { WORDS } = await import('../data/lexicon.js');
  const ws = WORDS.slice(0, 40);
  const routs = await generateGreedy(model, ws.map((w) => `The word ${w} backwards is`), { maxNewTokens: 8, batchSize: 40 });
  const revAcc = routs.filter((o, i) => o.startsWith(` ${[...ws[i]].reverse().join('')}.`)).length / ws.length;
  return { facts: factAcc, reverse: revAcc };
}

/** Settings of one phase that cannot work together, refused before any weights are loaded. */
function checkPhasePlan(plan: ZooPlan, phase: PhaseName): void {
  const p = plan[phase];
  // The base has no base to be pulled toward.
  if (phase === 'base' && (p.decayToBase ?? 0) > 0) throw new UserError(`plan ${plan.name}: base.decayToBase must be 0 (only a fine-tune is pulled toward the base), got ${p.decayToBase}`, { field: 'base.decayToBase' });
}

/** Runs (or resumes) one phase and writes its final HF folder to out/phase. */
export async function trainPhase(plan: ZooPlan, phase: PhaseName, opts: PhaseOptions): Promise<{ steps: number; finalLoss: number; wallSec: number; stopped?: boolean }> {
  const backend = await initBackend();
  const hash = phaseHash(plan, phase);
  const ckptDir = path.join(opts.out, '.ckpt', phase);
  const cfg = plan.model;
  const p = plan[phase];
  const total = totalSteps(p);
  checkPhasePlan(plan, phase);
  let s: TrainState | null = opts.resume ? await loadState(ckptDir, cfg, hash) : null;
  if (s) opts.log(`[${phase}] resuming at step ${s.step}/${total} from ${ckptDir}`);
  if (!s) {
    let arrays: Map<string, Float32Array>;
    if (phase === 'base') {
      arrays = new Map([...initWeights(cfg, plan.seed)].map(([n, { data }]) => [n, data]));
    } else {
      const baseDir = path.join(opts.out, 'base');
      const base = await readZooArrays(baseDir);
      if (JSON.stringify(base.config) !== JSON.stringify(cfg)) throw new UserError(`${baseDir}: config does not match the plan's model; retrain the base`, { file: baseDir });
      arrays = base.arrays;
    }
    s = newState(cfg, arrays);
  }
  const examples = phase === 'base' ? [] : taskExamples(phase, p.taskExamples, plan.seed, planTokenizer(plan));
  const baseArrays = (p.decayToBase ?? 0) > 0 ? (await readZooArrays(path.join(opts.out, 'base'))).arrays : null;
  const baseWeights = baseArrays ? new Map(tensorShapes(cfg).map(([n, shape]) => [n, tf.tensor(baseArrays.get(n)!, shape)])) : null;
  const release = (st: TrainState) => {
    disposeState(st);
    for (const t of baseWeights?.values() ?? []) t.dispose();
  };
  opts.log(`[${phase}] backend ${backend}, ${parameterCount(cfg)} parameters, ${total} steps, plan ${plan.name} (${hash})`);
  const shapeCache: RopeCache = new Map();
  const groups = p.microBatches ?? 1;
  const helpers: GradHelper[] = [];
  if (groups > 1 && (opts.gradHelpers ?? true)) {
    const names = trainedNames(s);
    const shapes = names.map((n) => s!.params.get(n)!.shape);
    for (let i = 1; i < groups; i++) helpers.push(await GradHelper.start(cfg, names, shapes, backend));
    opts.log(`[${phase}] ${groups} micro-batches per step, ${helpers.length} in helper processes`);
  }
  const bar = opts.bar ? new cliProgress.SingleBar({ format: `${phase} [{bar}] {value}/{total} loss {loss} | {tps} tok/s | eta {eta_formatted}` }, cliProgress.Presets.shades_classic) : null;
  bar?.start(total, s.step, { loss: '-', tps: '-' });
  const t0 = Date.now();
  const startElapsed = s.elapsedSec;
  let lastCkpt = Date.now();
  let winTok = 0;
  let winStart = Date.now();
  let lastLoss = NaN;
  try {
    while (s.step < total) {
      const batch = makeBatch(plan, phase, s.step, examples);
      const pre = groups > 1 ? await microBatchedGrads(plan, phase, s, batch, shapeCache, helpers) : undefined;
      const loss = trainStep(plan, phase, s, batch, shapeCache, baseWeights, pre);
      if (!Number.isFinite(loss)) throw new Error(`[${phase}] loss became ${loss} at step ${s.step}`);
      lastLoss = loss;
      s.lossEma = s.lossEma === null ? loss : 0.95 * s.lossEma + 0.05 * loss;
      winTok += batch.B * batch.T;
      s.elapsedSec = startElapsed + (Date.now() - t0) / 1000;
      if (s.step % plan.logEvery === 0 || s.step === total) {
        const tps = Math.round(winTok / ((Date.now() - winStart) / 1000));
        winTok = 0;
        winStart = Date.now();
        if (bar) bar.update(s.step, { loss: s.lossEma.toFixed(3), tps });
        else opts.log(`[${phase}] step ${s.step}/${total} loss ${s.lossEma.toFixed(4)} (last ${loss.toFixed(4)}) lr ${lrAt(p, s.step - 1).toExponential(2)} ${tps} tok/s elapsed ${Math.round(s.elapsedSec)}s`);
      }
      if (phase === 'base' && plan.probeEvery > 0 && (s.step % plan.probeEvery === 0 || s.step === total)) {
        const pr = await probeKnowledge(plan, s);
        opts.log(`[${phase}] probe step ${s.step}: arithmetic facts ${(pr.facts * 100).toFixed(1)}%, word reversal ${(pr.reverse * 100).toFixed(1)}%`);
      }
      if ((Date.now() - lastCkpt) / 1000 >= plan.checkpointEverySec && s.step < total) {
        await saveState(ckptDir, cfg, s, hash);
        lastCkpt = Date.now();
      }
      if (opts.stopAfter !== undefined && s.step >= opts.stopAfter && s.step < total) {
        bar?.stop();
        await saveState(ckptDir, cfg, s, hash);
        disposeRopeCache(shapeCache);
        const res = { steps: s.step, finalLoss: s.lossEma ?? lastLoss, wallSec: s.elapsedSec, stopped: true };
        release(s);
        opts.log(`[${phase}] stopped at step ${res.steps}/${total}; checkpoint in ${ckptDir}`);
        return res;
      }
    }
  } finally {
    for (const h of helpers) h.close();
  }
  bar?.stop();
  await saveZooModel(path.join(opts.out, phase), cfg, s.params as unknown as Map<string, tf.Tensor>, {
    'training_info.json': JSON.stringify({ phase, plan: plan.name, planHash: hash, seed: plan.seed, steps: total, finalLossEma: s.lossEma, wallSec: Math.round(s.elapsedSec), backend, phasePlan: p }, null, 2) + '\n',
  }, planTokenizer(plan));
  await fs.rm(ckptDir, { recursive: true, force: true });
  disposeRopeCache(shapeCache);
  const result = { steps: total, finalLoss: s.lossEma ?? lastLoss, wallSec: s.elapsedSec };
  release(s);
  opts.log(`[${phase}] done: ${total} steps, loss ${result.finalLoss.toFixed(4)}, ${Math.round(result.wallSec)}s; wrote ${path.join(opts.out, phase)}`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The whole zoo

export interface ZooTrainOptions {
  tiny?: boolean;
  /** A plan of ZOO_PLANS by name (default: tiny if `tiny`, else copy, the committed zoo's). */
  plan?: ZooPlanName;
  out: string;
  resume?: boolean;
  /** Run the two fine-tunes as parallel child processes, and a micro-batched phase's groups in helpers (default true). */
  parallel?: boolean;
  log?: (line: string) => void;
  bar?: boolean;
}

/** Whether `out` holds `phase` trained by the plan whose phase hash is `hash` (training_info.json). */
export async function phaseDone(out: string, phase: PhaseName, hash: string): Promise<boolean> {
  return (await trainedPlanHash(path.join(out, phase))) === hash;
}

/** The plan hash a finished model folder was trained by (training_info.json), if it has one. */
async function trainedPlanHash(modelDir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await fs.readFile(path.join(modelDir, 'training_info.json'), 'utf8')) as { planHash?: string }).planHash;
  } catch {
    return undefined;
  }
}

const WORKER = fileURLToPath(new URL('./trainWorker.ts', import.meta.url));

function runChild(phase: PhaseName, o: ZooTrainOptions, log: (l: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = ['--phase', phase, '--out', o.out, '--plan', zooPlanName(o), ...(o.resume ? ['--resume'] : [])];
    const child = fork(WORKER, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const pipe = (stream: NodeJS.ReadableStream | null) => {
      let buf = '';
      stream?.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          log(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    };
    pipe(child.stdout);
    pipe(child.stderr);
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`zoo ${phase} fine-tune exited with code ${code}`))));
  });
}

/** The plan `zoo train` runs for these options. */
export function zooPlanName(o: Pick<ZooTrainOptions, 'plan' | 'tiny'>): ZooPlanName {
  return o.plan ?? (o.tiny ? 'tiny' : 'copy');
}

export async function trainZoo(o: ZooTrainOptions): Promise<void> {
  const plan = ZOO_PLANS[zooPlanName(o)];
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const t0 = Date.now();
  if (o.resume && (await phaseDone(o.out, 'base', phaseHash(plan, 'base')))) log(`[base] already trained in ${path.join(o.out, 'base')}; skipping`);
  else await trainPhase(plan, 'base', { out: o.out, resume: !!o.resume, log, bar: o.bar, gradHelpers: o.parallel ?? true });
  const pending: PhaseName[] = [];
  for (const ph of ['math', 'chat'] as const) {
    if (o.resume && (await phaseDone(o.out, ph, phaseHash(plan, ph)))) log(`[${ph}] already trained; skipping`);
    else pending.push(ph);
  }
  if (o.parallel ?? true) await Promise.all(pending.map((ph) => runChild(ph, o, log)));
  else for (const ph of pending) await trainPhase(plan, ph, { out: o.out, resume: !!o.resume, log });
  log(`zoo (${plan.name}) trained in ${Math.round((Date.now() - t0) / 1000)}s into ${o.out}`);
}
