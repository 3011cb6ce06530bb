/**
 * Regenerates the committed task data from fixed seeds:
 *   data/math_train.jsonl, data/chat_train.jsonl (fine-tuning sets),
 *   evals/math.jsonl, evals/chat.jsonl (held-out eval sets), evals/lm.jsonl (held-out prose).
 * Run: `mergelab data build [--root DIR]`. Same seeds give the same bytes. It lives with the zoo
 * because the held-out prose must avoid what the zoo's trainer reads.
 */
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { chatPrompts } from '../data/chat.js';
import { mathProblems } from '../data/math.js';
import { excludedDocuments, lmEvalRows } from './heldout.js';

export const TASK_DATA = {
  seed: 1,
  evalSeed: 2,
  mathTrain: 10_000,
  chatTrain: 10_000,
  mathEval: 300,
  chatEval: 300,
  lmEval: 200,
} as const;

export function toJsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

export interface BuildReport { files: Record<string, number> }

export async function buildTaskData(root: string, log: (s: string) => void = () => {}): Promise<BuildReport> {
  const files: Record<string, number> = {};
  const write = async (rel: string, rows: readonly unknown[]) => {
    await writeFileAtomic(path.join(root, rel), toJsonl(rows));
    files[rel] = rows.length;
    log(`wrote ${rel} (${rows.length} rows)`);
  };
  await write('data/math_train.jsonl', mathProblems('train', TASK_DATA.mathTrain, TASK_DATA.seed));
  await write('data/chat_train.jsonl', chatPrompts('train', TASK_DATA.chatTrain, TASK_DATA.seed));
  await write('evals/math.jsonl', mathProblems('eval', TASK_DATA.mathEval, TASK_DATA.evalSeed));
  await write('evals/chat.jsonl', chatPrompts('eval', TASK_DATA.chatEval, TASK_DATA.evalSeed));
  await write('evals/lm.jsonl', lmEvalRows(TASK_DATA.lmEval, excludedDocuments()));
  return { files };
}
