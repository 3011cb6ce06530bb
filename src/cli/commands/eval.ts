/** `mergelab eval MODEL_DIR --suite math,chat,lm`: built-in or delegated evaluation of one model. */
import type { Command } from 'commander';
import type { EvalResult } from '../../eval/evaluate.js';
import { UserError } from '../../util/errors.js';
import { EXIT } from '../exit.js';
import { wholeNumber } from '../flags.js';
import { stopChildren, trapInterrupts } from '../interrupt.js';

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4));

/** Plain-text table: one row per suite metric. */
export function metricsTable(res: EvalResult): string {
  const rows: Array<[string, string, string]> = [['suite', 'metric', 'value']];
  for (const [suite, ms] of Object.entries(res.metrics)) for (const [m, v] of Object.entries(ms)) rows.push([suite, m, fmt(v)]);
  const w = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padStart(w[2])}`;
  const timing = Object.entries(res.timings).map(([k, v]) => `${k} ${v.toFixed(1)}s`).join(', ');
  return [`model ${res.model} (backend ${res.backend})`, line(rows[0]), ...rows.slice(1).map(line), `time: ${timing}`].join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('evaluate a model on eval suites (evals/NAME.yaml): math exact match, chat IFEval accuracy, lm perplexity')
    .argument('<model_dir>', 'model folder (Hugging Face layout), or the name passed to --delegate-cmd/--endpoint')
    .option('--suite <names>', 'comma-separated suites (yaml names in the evals folder)', 'math,chat,lm')
    .option('--limit <n>', 'evaluate the first N items of each suite', wholeNumber('--limit', 1))
    .option('--batch-size <n>', 'generation batch size', wholeNumber('--batch-size', 1), 32)
    .option('--samples <n>', 'samples kept per suite in the JSON result', wholeNumber('--samples', 0), 5)
    .option('--runner <name>', 'built-in runner for zoo models: fast, or tfjs (the reference; the same outputs); default: fast where it can take the model, else tfjs')
    .option('--threads <n>', 'worker threads of the fast runner (default: the cores)', wholeNumber('--threads', 1))
    .option('--evals-dir <dir>', 'folder of suite yamls (default: the repository evals/)')
    .option('--delegate-cmd <cmd>', 'run generation/scoring through a command: "cmd {model} {task_file}" printing JSONL')
    .option('--endpoint <url>', 'run generation/scoring through an OpenAI-compatible completions endpoint')
    .option('--json', 'print the full result as JSON instead of a table')
    .option('--out <file>', 'write the full result as JSON (atomically)')
    .action(async (modelDir: string, o: { suite: string; runner?: string; threads?: number; limit?: number; batchSize: number; samples: number; evalsDir?: string; delegateCmd?: string; endpoint?: string; json?: boolean; out?: string }) => {
      // An evaluation keeps nothing until it ends: an interrupt stops a delegated command at once
      // (the backend then removes its temporary task files); a built-in one is given 2 s to notice.
      const lost = `evaluation of ${modelDir} stopped; nothing was saved${o.out ? ` (${o.out} is written only when the evaluation completes)` : ''}; run the same command again`;
      const stop = trapInterrupts({ onSoft: () => (stopChildren('SIGTERM'), 'stopping the evaluation'), onForcedExit: () => `interrupted: ${lost}`, softGraceMs: 2000, graceMs: 0 });
      try {
        const [{ evaluateModel, ZOO_RUNNERS }, { writeFileAtomic }] = await Promise.all([import('../../eval/evaluate.js'), import('../../util/atomic.js')]);
        const suites = o.suite.split(',').map((s) => s.trim()).filter(Boolean);
        const runner = o.runner === undefined ? undefined : ZOO_RUNNERS.find((r) => r === o.runner);
        if (o.runner !== undefined && !runner) throw new UserError(`--runner: expected ${ZOO_RUNNERS.join(' or ')}, got "${o.runner}"`, { field: '--runner' });
        const res = await evaluateModel(modelDir, {
          suites,
          limit: o.limit,
          batchSize: o.batchSize,
          samples: o.samples,
          runner,
          threads: o.threads,
          evalsDir: o.evalsDir,
          delegateCmd: o.delegateCmd,
          endpoint: o.endpoint,
          log: (l) => process.stderr.write(l + '\n'),
        });
        if (o.out) await writeFileAtomic(o.out, JSON.stringify(res, null, 2) + '\n');
        process.stdout.write(o.json ? JSON.stringify(res, null, 2) + '\n' : metricsTable(res));
      } catch (e) {
        if (!stop.soft.aborted) throw e;
        process.stderr.write(`interrupted: ${lost}\n`);
        process.exitCode = EXIT.interrupted;
      } finally {
        stop.dispose();
      }
    });
}
