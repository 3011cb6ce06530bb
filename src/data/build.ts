/**
 * Regenerates the committed task data from fixed seeds:
 *   data/math_train.jsonl, data/chat_train.jsonl (fine-tuning sets),
 *   evals/math.jsonl, evals/chat.jsonl (held-out eval sets), evals/lm.jsonl (held-out prose).
 * Run: `npx tsx src/data/build.ts [--root DIR]`. Same seeds give the same bytes.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../util/atomic.js';
import { mathProblems } from './math.js';
import { chatPrompts } from './chat.js';
import { buildLmEval } from './lm-eval.js';

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
  const lm = await buildLmEval(root, TASK_DATA.lmEval);
  if (lm) await write('evals/lm.jsonl', lm);
  else log('skipped evals/lm.jsonl (no pretraining corpus generator yet)');
  return { files };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--root');
  const root = i >= 0 ? process.argv[i + 1] : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  buildTaskData(root, (s) => process.stdout.write(s + '\n')).catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
