/**
 * Held-out prose for the lm (perplexity) suite: documents of the pretraining generator's `heldout`
 * stream that the committed zoo never trained on. Short fact sentences recur by design, so an
 * unfiltered draw would score memorised lines. Two filters:
 * - what the zoo trained on, read from the trainer's own batches (`makeBatch`, every step of every
 *   phase of the committed plan), so the check cannot drift from the training;
 * - a long prefix of the generator's training stream, which removes every frequent document,
 *   whatever plan trained the model being scored.
 */
import { pretrainDocuments, pretrainStream } from '../data/pretrain.js';
import { COPY_PLAN, makeBatch, planTokenizer, taskExamples, totalSteps, type PhaseName, type ZooPlan } from './train.js';

export const LM_EVAL = {
  heldoutSeed: 2,
  /** Seed and length of the training-stream prefix excluded. */
  trainSeed: 1,
  trainDocsChecked: 400_000,
} as const;

export interface LmRow {
  id: string;
  text: string;
}

/** Every pretraining document a plan's batches hold: the base's rows and the fine-tunes' corpus rows. */
export function trainedDocuments(plan: ZooPlan = COPY_PLAN): Set<string> {
  const seen = new Set<string>();
  for (const phase of ['base', 'math', 'chat'] as PhaseName[]) {
    const p = plan[phase];
    const examples = phase === 'base' ? [] : taskExamples(phase, p.taskExamples, plan.seed, planTokenizer(plan));
    for (let step = 0; step < totalSteps(p); step++) for (const d of makeBatch(plan, phase, step, examples).documents) seen.add(d);
  }
  return seen;
}

/** The first `n` distinct documents of the held-out stream that are not in `seen`. */
export function lmEvalRows(n: number, seen: ReadonlySet<string>, seed: number = LM_EVAL.heldoutSeed): LmRow[] {
  const out: LmRow[] = [];
  const taken = new Set<string>();
  let want = n * 2;
  while (out.length < n) {
    out.length = 0;
    taken.clear();
    for (const text of pretrainDocuments('heldout', want, seed)) {
      if (seen.has(text) || taken.has(text)) continue;
      taken.add(text);
      out.push({ id: `lm-${String(out.length).padStart(5, '0')}`, text });
      if (out.length === n) break;
    }
    want *= 2;
  }
  return out;
}

/** Documents the held-out set must avoid: the committed plan's training documents and the stream prefix. */
export function excludedDocuments(): Set<string> {
  const seen = trainedDocuments(COPY_PLAN);
  const it = pretrainStream('train', LM_EVAL.trainSeed);
  for (let i = 0; i < LM_EVAL.trainDocsChecked; i++) seen.add(it.next().value as string);
  return seen;
}
