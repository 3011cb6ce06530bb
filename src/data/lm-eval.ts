/**
 * Held-out prose for the lm (perplexity) suite: documents from the pretraining generator's
 * `heldout` stream that occur nowhere in what the zoo trained on. Short fact sentences recur by
 * design, so an unfiltered draw would score memorised lines. Two filters:
 * - exact: every pretraining document the zoo's plan draws (base and both fine-tunes), enumerated
 *   the way src/zoo/train.ts builds its batches (per-step seeds, rows filled with whole
 *   documents); this mirrors ZOO's batch code, so it must follow it if that changes;
 * - sampled: a long prefix of the generator's own training stream, which catches every frequent
 *   document even if the enumeration above drifted from the trainer.
 */
import { pretrainDocument, pretrainDocuments, pretrainStream } from './pretrain.js';
import { mathProblems } from './math.js';
import { chatPrompts } from './chat.js';
import { fnv1a } from './split.js';
import { FULL_PLAN, mathExample, chatExample, planTokenizer, type PhaseName, type ZooPlan } from '../zoo/train.js';
import type { ZooTokenizer } from '../zoo/tokenizer.js';
import { rng as zooRng } from '../zoo/model.js';

export const LM_EVAL = {
  heldoutSeed: 2,
  /** Seed and length of the training stream prefix checked for overlap. */
  trainSeed: 1,
  trainDocsChecked: 400_000,
} as const;

export interface LmRow { id: string; text: string }

/** The first `docs` documents of the generator's training stream. */
export function trainingLines(seed: number, docs: number): Set<string> {
  const seen = new Set<string>();
  const it = pretrainStream('train', seed);
  for (let i = 0; i < docs; i++) seen.add(it.next().value as string);
  return seen;
}

/** Draws whole documents until a row of T+1 tokens (<bos>, docs joined by newlines) is full. */
function drawRow(tok: ZooTokenizer, r: () => number, T: number, mix: Parameters<typeof pretrainDocument>[1], into: Set<string>): void {
  let len = 1;
  while (len < T + 1) {
    const d = pretrainDocument(r, mix);
    into.add(d);
    len += tok.encode(d).length + 1;
  }
}

/** Every pretraining document a zoo plan trains on (the base's batches and the fine-tunes' mixed-in rows). */
export function zooTrainingDocuments(plan: ZooPlan = FULL_PLAN): Set<string> {
  const seen = new Set<string>();
  const tok = planTokenizer(plan);
  for (const phase of ['base', 'math', 'chat'] as PhaseName[]) {
    const p = plan[phase];
    let lengths: number[] = [];
    if (phase !== 'base') {
      const ex = phase === 'math'
        ? mathProblems('train', p.taskExamples, plan.seed).map((q) => mathExample(q.question, q.answer))
        : chatPrompts('train', p.taskExamples, plan.seed).map((q) => chatExample(q.prompt, q.response));
      // prompt = <bos> + prompt tokens, target = target tokens + <eos>
      lengths = ex.map((e) => 1 + tok.encode(e.prompt).length + tok.encode(e.target).length + 1);
    }
    let step = 0;
    for (const st of p.stages) {
      for (let k = 0; k < st.steps; k++, step++) {
        const r = zooRng(fnv1a(`${plan.seed}:${phase}:${step}`));
        if (phase === 'base') {
          for (let b = 0; b < st.batch; b++) drawRow(tok, r, st.seqLen, st.mix, seen);
        } else {
          const nTask = Math.max(1, Math.round(st.batch * p.taskFrac));
          let longest = 0;
          for (let b = 0; b < nTask; b++) longest = Math.max(longest, lengths[Math.floor(r() * lengths.length)]);
          const T = Math.ceil((longest - 1) / 16) * 16;
          for (let b = nTask; b < st.batch; b++) drawRow(tok, r, T, undefined, seen);
        }
      }
    }
  }
  return seen;
}

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

/** Documents the held-out set must avoid: the zoo's exact training documents plus the sampled stream. */
export function excludedLines(): Set<string> {
  const seen = zooTrainingDocuments();
  for (const d of trainingLines(LM_EVAL.trainSeed, LM_EVAL.trainDocsChecked)) seen.add(d);
  return seen;
}

export async function buildLmEval(_root: string, n: number): Promise<LmRow[] | null> {
  return lmEvalRows(n, excludedLines());
}
