/**
 * Held-out prose for the lm (perplexity) suite: documents from the pretraining generator's
 * `heldout` stream, keeping only those that occur nowhere in a long prefix of the training stream
 * (short fact sentences recur by design, so an unfiltered draw would score memorised lines).
 */
import { pretrainDocuments, pretrainStream } from './pretrain.js';

export const LM_EVAL = {
  heldoutSeed: 2,
  /** Seed and length of the training stream prefix checked for overlap. */
  trainSeed: 1,
  trainDocsChecked: 400_000,
} as const;

export interface LmRow { id: string; text: string }

/** The set of training-stream documents (and their sentences) that held-out text must avoid. */
export function trainingLines(seed: number, docs: number): Set<string> {
  const seen = new Set<string>();
  const it = pretrainStream('train', seed);
  for (let i = 0; i < docs; i++) seen.add(it.next().value as string);
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

export async function buildLmEval(_root: string, n: number): Promise<LmRow[] | null> {
  return lmEvalRows(n, trainingLines(LM_EVAL.trainSeed, LM_EVAL.trainDocsChecked));
}
