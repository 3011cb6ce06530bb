/** `mergelab report EXP`: the CSV/JSON exports, charts/*.svg and the offline index.html of one experiment. */
import type { Command } from 'commander';
import type { ReportOptions } from '../../report/options.js';
import { trapInterrupts } from '../interrupt.js';
import { commaList, numberIn, wholeNumber } from '../flags.js';


export function register(program: Command): void {
  program
    .command('report')
    .description('write reports/EXP/index.html (offline, self-contained), results.csv, results.json and charts/*.svg from results.jsonl')
    .argument('<exp>', 'experiment name under reports/, its folder, or its experiments/NAME.yaml')
    .option('--out <dir>', 'write the report here instead of the experiment folder')
    .option('--select <points>', 'comma-separated point ids whose per-layer diagnostics are charted (repeatable)', commaList)
    .option('--parent-fraction <x>', 'collapse when a skill score < x times the best parent (default 0.5)', numberIn('--parent-fraction', 0, 10))
    .option('--perplexity-factor <x>', "collapse when perplexity > x times the base's (default 1.5)", numberIn('--perplexity-factor', 1e-9, 1e9))
    .option('--degenerate-rate <x>', 'collapse when the degenerate-output rate > x (default 0.2)', numberIn('--degenerate-rate', 0, 1))
    .option('--base-margin <x>', 'slack for the below-base rule (default 0)', numberIn('--base-margin', 0, 1e9))
    .option('--samples <n>', 'generations shown per collapsed point (default 3)', wholeNumber('--samples', 0))
    .option('--max-diagnostics <n>', 'points in the per-layer diagnostics chart at most (default 40)', wholeNumber('--max-diagnostics', 0))
    .option('--no-svg', 'skip charts/*.svg')
    .option('--json', 'print the summary as JSON')
    .action(async (exp: string, o: { out?: string; select?: string[]; parentFraction?: number; perplexityFactor?: number; degenerateRate?: number; baseMargin?: number; samples?: number; maxDiagnostics?: number; svg: boolean; json?: boolean }) => {
      const [{ generateReport, resolveExperimentDir }, { formatReportSummary }] = await Promise.all([import('../../report/generate.js'), import('../../report/text.js')]);
      const dir = await resolveExperimentDir(exp);
      const opts: ReportOptions = {
        outDir: o.out,
        select: o.select,
        collapse: { parentFraction: o.parentFraction, perplexityFactor: o.perplexityFactor, degenerateRate: o.degenerateRate, baseMargin: o.baseMargin },
        samplesPerPoint: o.samples,
        maxDiagnosticPoints: o.maxDiagnostics,
        svg: o.svg,
      };
      // Every file of the report is written to a temporary name and renamed: a report stopped
      // midway leaves the previous version of each file it had not yet replaced, never half a file.
      const stop = trapInterrupts({
        onSoft: () => 'finishing the report (a few seconds)',
        onForcedExit: () => `interrupted: the report in ${o.out ?? dir} may mix new and previous files; run \`mergelab report ${exp}\` again`,
        graceMs: 0,
      });
      process.stderr.write(`report: ${dir} -> ${o.out ?? dir}\n`);
      let summary;
      try {
        summary = await generateReport(dir, opts);
      } finally {
        stop.dispose();
      }
      process.stdout.write(o.json ? JSON.stringify(summary, null, 2) + '\n' : formatReportSummary(summary));
    });
}
