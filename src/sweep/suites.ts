import { promises as fs } from 'node:fs';
import path from 'node:path';
import { evaluatorVersion } from './evaluator.js';
import type { Experiment } from './experiment.js';
import { contentKey, sha256 } from './hash.js';

/** The experiment's evaluation suites, versioned for cache keys (`check.ts` checks that they load). */

/** Version of the evaluation: the evaluator's, plus the content of the suite files used. */
export async function evalVersion(exp: Experiment): Promise<string> {
  const { DEFAULT_EVALS_DIR: evalsDir } = await import('../eval/evaluate.js');
  const parts = [await evaluatorVersion()];
  for (const s of exp.eval.suites) {
    for (const ext of ['yaml', 'jsonl']) {
      try {
        parts.push(sha256(await fs.readFile(path.join(evalsDir, `${s}.${ext}`))));
      } catch {
        parts.push(`${s}.${ext}:absent`);
      }
    }
  }
  return contentKey(parts);
}
