import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError, isUserError } from '../util/errors.js';
import { evaluatorVersion } from './evaluator.js';
import type { Experiment } from './experiment.js';
import { contentKey, sha256 } from './hash.js';

/** The experiment's evaluation suites: checked before planning, and versioned for cache keys. */

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

export async function checkSuites(exp: Experiment): Promise<void> {
  const { loadTask } = await import('../eval/task.js');
  const { DEFAULT_EVALS_DIR } = await import('../eval/evaluate.js');
  const problems: string[] = [];
  for (let i = 0; i < exp.eval.suites.length; i++) {
    try {
      await loadTask(exp.eval.suites[i], DEFAULT_EVALS_DIR);
    } catch (e) {
      if (!isUserError(e)) throw e;
      problems.push(`${exp.where(['eval', 'suites', i])}: field eval.suites[${i}]: ${e.message}`);
    }
  }
  if (problems.length) throw new UserError(problems.join('\n'), { file: exp.file });
}
