import { promises as fs } from 'node:fs';
import { isUserError, type Problem } from '../util/errors.js';
import { nearest } from '../util/suggest.js';
import { readExperiment, type Experiment, type LoadExperimentOptions } from './experiment.js';
import { checkPlan } from './plan.js';

/**
 * Everything wrong with an experiment file, found in one pass: the file itself (schema, models,
 * axes, placeholders), its eval suites, and every recipe of its sweep against the models' headers.
 * `mergelab validate EXP.yaml` prints it; `mergelab run` (and `--dry-run`) stops on the same list.
 */

/** Each eval suite that does not load, at its place in `eval.suites`, with the nearest known suite. */
export async function suiteProblems(exp: Experiment): Promise<Problem[]> {
  const [{ loadTask }, { DEFAULT_EVALS_DIR }] = await Promise.all([import('../eval/task.js'), import('../eval/evaluate.js')]);
  let known: string[] = [];
  try {
    known = (await fs.readdir(DEFAULT_EVALS_DIR)).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -'.yaml'.length));
  } catch {
    // no evals folder: every suite fails to load and says where it looked
  }
  const problems: Problem[] = [];
  // lm-eval's suites are names of its tasks (eval.backend.tasks), not files of evals/.
  if (exp.eval.backend.type === 'lm-eval') return problems;
  for (let i = 0; i < exp.eval.suites.length; i++) {
    const name = exp.eval.suites[i];
    try {
      await loadTask(name, DEFAULT_EVALS_DIR);
    } catch (e) {
      if (!isUserError(e)) throw e;
      const suggestion = known.includes(name) ? undefined : nearest(name, known);
      problems.push({ ...exp.pos(['eval', 'suites', i]), field: `eval.suites[${i}]`, message: e.message, ...(suggestion ? { suggestion } : {}) });
    }
  }
  return problems;
}

/**
 * The program the backend starts, when it is not on this machine: `lm_eval`, the server of
 * `serve` or the delegate `cmd`, at its field, before any model is merged (a sweep of fifty
 * points would otherwise fail fifty times). Programs on the backend's own `env.PATH` count.
 */
export async function backendCommandProblems(exp: Experiment): Promise<Problem[]> {
  const b = exp.eval.backend;
  const { programOf, canRun } = await import('../eval/backends/process.js');
  const [field, template] = b.type === 'lm-eval' ? ['command', b.command] : b.type === 'command' ? ['cmd', b.cmd] : b.type === 'openai' && b.serve ? ['serve', b.serve] : [null, null];
  if (field === null || template === null) return [];
  const program = programOf(template);
  const envPath = (b.type === 'openai' || b.type === 'lm-eval' ? b.env?.PATH : undefined) ?? process.env.PATH;
  if (program === null || canRun(program, envPath)) return [];
  const how =
    b.type === 'lm-eval'
      ? 'install lm-evaluation-harness (pip install "lm_eval[hf,ifeval]"; "lm_eval[vllm]" for --model vllm) or give its full path'
      : program === 'vllm'
        ? 'install vLLM (pip install vllm) or give its full path'
        : 'install it, give its full path or put its folder in eval.backend.env.PATH';
  return [{ ...exp.pos(['eval', 'backend', field]), field: `eval.backend.${field}`, message: `${program}: command not found on PATH; ${how}` }];
}

export interface ExperimentCheck {
  name: string;
  variants: number;
  /** Points the sweep plans (seeds included), counting only recipes without problems. */
  points: number;
  problems: Problem[];
}

export async function checkExperimentFile(file: string, opts: LoadExperimentOptions = {}): Promise<ExperimentCheck> {
  const draft = await readExperiment(file, opts);
  const exp = draft.experiment;
  const prior = { problems: [...draft.problems, ...(await suiteProblems(exp))], unavailableModels: draft.unavailableModels };
  const { problems, points } = await checkPlan(exp, { prior });
  return { name: exp.name, variants: exp.variants.length, points, problems };
}
