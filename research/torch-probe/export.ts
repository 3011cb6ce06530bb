/**
 * Exports what bench/torch-probe/probe.py needs to replay the zoo's fine-tuning in PyTorch on a
 * GPU machine (where Node is not installed): the fine-tunes' task examples and corpus documents
 * as token ids, the eval suites' prompts exactly as `mergelab eval` renders them, and reference
 * logits of the base model so the replica can prove it computes the same function.
 *
 * With --base it also writes the whole pretraining run as the trainer would see it, so the
 * replica can pretrain a base from the same initial weights on the same batches (to try a corpus
 * change on a GPU before a 62-minute rebuild here): `init/model.safetensors` (FULL_PLAN's seeded
 * initial weights), `base-rows.bin` (every step's rows of T+1 token ids, uint8), `base-steps.json`
 * (per step: rows, T, byte offset, learning rate, whether Adam's moments restart) and the
 * trainer's loss on the first batch at the initial weights.
 *
 *   npx tsx bench/torch-probe/export.ts [OUT_DIR=bench/torch-probe/data] [--base]
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FULL_PLAN, makeBatch, stepSchedule, taskExamples } from '../../src/zoo/train.js';
import { CheckpointWriter } from '../../src/checkpoint/writer.js';
import { pretrainDocument } from '../../src/data/pretrain.js';
import { ZooTokenizer, BOS_ID, EOS_ID } from '../../src/zoo/tokenizer.js';
import { loadZooModel } from '../../src/zoo/io.js';
import { initBackend, forward, inferenceView, trainingView, lossFn, initWeights, ropeTensors, causalMask, rng, tf, type Weights } from '../../src/zoo/model.js';
import { loadSuites } from '../../src/eval/evaluate.js';
import { renderTemplate } from '../../src/eval/template.js';

const args = process.argv.slice(2);
const out = args.find((a) => !a.startsWith('--')) ?? 'bench/torch-probe/data';
const tok = new ZooTokenizer();
const seed = FULL_PLAN.seed;

function examples(kind: 'math' | 'chat') {
  return taskExamples(kind, FULL_PLAN[kind].taskExamples, seed).map((e) => ({ p: e.prompt, t: e.target }));
}

/** The base's pretraining run, step by step, exactly as src/zoo/train.ts batches and schedules it. */
async function exportBase(): Promise<void> {
  await initBackend();
  const plan = FULL_PLAN;
  const init = initWeights(plan.model, plan.seed);
  const w = await CheckpointWriter.create(path.join(out, 'init'), { dtype: 'F32' });
  for (const [name, { shape, data }] of init) await w.addF32(name, shape, data);
  await w.finish();
  const total = plan.base.stages.reduce((a, st) => a + st.steps, 0);
  const chunks: Uint8Array[] = [];
  const steps: Array<{ rows: number; T: number; offset: number; lr: number; restart: boolean }> = [];
  let offset = 0;
  for (let step = 0; step < total; step++) {
    const b = makeBatch(plan, 'base', step, []);
    const bytes = new Uint8Array(b.B * (b.T + 1));
    for (let r = 0; r < b.B; r++) {
      for (let j = 0; j < b.T; j++) bytes[r * (b.T + 1) + j] = b.ids[r * b.T + j];
      bytes[r * (b.T + 1) + b.T] = b.targets[r * b.T + b.T - 1];
    }
    const { lr, restartMoments } = stepSchedule(plan.base, step);
    steps.push({ rows: b.B, T: b.T, offset, lr, restart: restartMoments });
    chunks.push(bytes);
    offset += bytes.length;
  }
  await fs.writeFile(path.join(out, 'base-rows.bin'), Buffer.concat(chunks));
  // The trainer's loss on step 0's batch at the initial weights: the replica's training path must match it.
  const b0 = makeBatch(plan, 'base', 0, []);
  const weights: Weights = new Map([...init].map(([n, { shape, data }]) => [n, tf.tensor(data, shape)]));
  const rope = ropeTensors(plan.model, b0.T);
  const loss0 = tf.tidy(() => lossFn(plan.model, trainingView(weights), tf.tensor2d(b0.ids, [b0.B, b0.T], 'int32'), tf.tensor2d(b0.targets, [b0.B, b0.T], 'int32'), tf.tensor1d(b0.lossMask), rope, causalMask(b0.T)).dataSync()[0]);
  const meta = { weightDecay: plan.base.weightDecay, totalSteps: total, loss0, steps };
  await fs.writeFile(path.join(out, 'base-steps.json'), JSON.stringify(meta));
  console.log(`wrote ${out}/init, base-rows.bin (${(offset / 1e6).toFixed(1)} MB, ${total} steps) and base-steps.json; trainer loss at step 0: ${loss0.toFixed(5)}`);
}

async function main(): Promise<void> {
  if (args.includes('--base')) await exportBase();
  await fs.mkdir(out, { recursive: true });
  const r = rng(seed * 7919 + 17);
  const corpus = Array.from({ length: 40_000 }, () => tok.encode(pretrainDocument(r)));
  const suites = await loadSuites({ suites: ['math', 'chat'] });
  const evals: Record<string, Array<{ id: string; prompt: string; ids: number[]; max_new: number }>> = {};
  for (const s of suites) {
    if (s.spec.type === 'loglikelihood_rolling') continue;
    const spec = s.spec;
    evals[spec.task] = s.rows.map((row) => {
      const prompt = renderTemplate(spec.prompt, row);
      return { id: String(row[spec.id_field]), prompt, ids: [BOS_ID, ...tok.encode(prompt)], max_new: spec.generation.max_new_tokens };
    });
  }
  // Reference logits of the committed base on the first math eval prompt (all positions).
  const model = await loadZooModel('data/zoo/base');
  const ids = evals.math[0].ids;
  const T = ids.length;
  const rope = ropeTensors(model.config, T);
  const view = inferenceView(model.weights);
  const logits = tf.tidy(() => forward(model.config, view, { ids: tf.tensor2d(ids, [1, T], 'int32'), cos: rope.cos, sin: rope.sin, mask: causalMask(T) }).logits.arraySync() as number[][]);
  view.dispose();
  const data = {
    vocab: tok.vocabSize,
    bos: BOS_ID,
    itos: Array.from({ length: tok.vocabSize }, (_, id) => tok.idToString(id)),
    eos: EOS_ID,
    plan: { math: FULL_PLAN.math, chat: FULL_PLAN.chat, model: FULL_PLAN.model },
    math_train: examples('math'),
    chat_train: examples('chat'),
    corpus,
    evals,
    reference: { ids, logits },
  };
  await fs.writeFile(path.join(out, 'probe-data.json'), JSON.stringify(data));
  const mb = (JSON.stringify(data).length / 1e6).toFixed(1);
  console.log(`wrote ${out}/probe-data.json (${mb} MB): ${data.math_train.length} math, ${data.chat_train.length} chat examples, ${corpus.length} corpus docs, ${evals.math.length}/${evals.chat.length} eval prompts`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
