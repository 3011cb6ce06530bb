/**
 * The two places the merge engine calls the tokenizer module: reading the inputs' tokenizer files
 * (before planning), and permuting a token-indexed tensor's inputs into the output vocabulary
 * (after reading them, before the merge method sees them).
 */
import path from 'node:path';
import type { HeaderView, PlannedTensor } from './plan.js';
import { isUserError, type Problem } from '../util/errors.js';
import { permuteEmbeddings, type EmbedTensor } from '../tokenizer/embed.js';
import { readModelTokenizer, type ModelTokenizer } from '../tokenizer/files.js';
import { isVocabTensor, type StageTokenizer } from './tokenizer-stage.js';

/**
 * Each folder's tokenizer (null when it has none). One that cannot be read is a problem naming its
 * file when the stage has a tokenizer setting (`needed`); otherwise it only cannot be compared, and
 * counts as absent.
 */
export async function readStageTokenizers(dirs: Record<string, string>, problems: Problem[], needed: boolean): Promise<Record<string, ModelTokenizer | null>> {
  const out: Record<string, ModelTokenizer | null> = {};
  const byDir = new Map<string, ModelTokenizer | null>();
  for (const [ref, dir] of Object.entries(dirs)) {
    const key = path.resolve(dir);
    if (!byDir.has(key)) {
      try {
        byDir.set(key, await readModelTokenizer(key));
      } catch (e) {
        if (!isUserError(e)) throw e;
        if (needed) problems.push({ message: `model '${ref}': ${e.message}` });
        byDir.set(key, null);
      }
    }
    out[ref] = byDir.get(key)!;
  }
  return out;
}

/**
 * The base and model tensors of one planned tensor, permuted into the output vocabulary when it is
 * token-indexed (other tensors are returned as they are).
 */
export function tokenizeEmbeddings<T extends { ref: string; data: Float32Array; shape: number[] }>(
  tok: StageTokenizer,
  t: PlannedTensor,
  base: Float32Array | null,
  models: T[],
  headers: Record<string, HeaderView>,
): { base: Float32Array | null; models: T[] } {
  if (!isVocabTensor(t.name) || t.shape.length !== 2) return { base, models };
  const cols = t.shape[1];
  const tensors = new Map<string, EmbedTensor>();
  if (t.base && base) tensors.set(t.base.ref, { data: base, rows: headers[t.base.ref].info(t.base.tensor).shape[0] });
  for (const m of models) tensors.set(m.ref, { data: m.data, rows: m.shape[0] });
  const plan = tok.embedPlan([...tensors.keys()], t.base?.ref ?? null);
  const permuted = permuteEmbeddings(plan, tensors, cols);
  const shape = [tok.outRows, cols];
  return {
    base: t.base && base ? permuted.get(t.base.ref)! : base,
    models: models.map((m) => ({ ...m, data: permuted.get(m.ref)!, shape: [...shape] })),
  };
}
