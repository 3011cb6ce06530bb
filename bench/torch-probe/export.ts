/**
 * Exports what bench/torch-probe/probe.py needs to replay the zoo's fine-tuning in PyTorch on a
 * GPU machine (where Node is not installed): the fine-tunes' task examples and corpus documents
 * as token ids, the eval suites' prompts exactly as `mergelab eval` renders them, and reference
 * logits of the base model so the replica can prove it computes the same function.
 *
 *   npx tsx bench/torch-probe/export.ts [OUT_DIR=bench/torch-probe/data]
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FULL_PLAN, mathExample, chatExample } from '../../src/zoo/train.js';
import { mathProblems } from '../../src/data/math.js';
import { chatPrompts } from '../../src/data/chat.js';
import { pretrainDocument } from '../../src/data/pretrain.js';
import { CharTokenizer, BOS_ID, EOS_ID } from '../../src/zoo/tokenizer.js';
import { loadZooModel } from '../../src/zoo/io.js';
import { forward, inferenceView, ropeTensors, causalMask, rng, tf } from '../../src/zoo/model.js';
import { loadSuites } from '../../src/eval/evaluate.js';
import { renderTemplate } from '../../src/eval/template.js';

const out = process.argv[2] ?? 'bench/torch-probe/data';
const tok = new CharTokenizer();
const seed = FULL_PLAN.seed;

function examples(kind: 'math' | 'chat', n: number) {
  const raw = kind === 'math' ? mathProblems('train', n, seed).map((p) => mathExample(p.question, p.answer)) : chatPrompts('train', n, seed).map((p) => chatExample(p.prompt, p.response));
  return raw.map((e) => ({ p: [BOS_ID, ...tok.encode(e.prompt)], t: [...tok.encode(e.target), EOS_ID] }));
}

async function main(): Promise<void> {
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
    math_train: examples('math', FULL_PLAN.math.taskExamples),
    chat_train: examples('chat', FULL_PLAN.chat.taskExamples),
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
