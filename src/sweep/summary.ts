import type { ResultRecord } from '../results/record.js';
import type { ExecutorName } from './executor.js';

/** What `mergelab run` did, as returned to callers and printed at the end of a run. */
export interface RunSummary {
  experiment: string;
  expDir: string;
  resultsFile: string;
  executor: ExecutorName;
  points: number;
  /** Points whose record could be rebuilt from the cache at start. */
  pointsCachedAtStart: number;
  failed: number;
  merges: {
    performed: number;
    /** Stage uses (summed over points) that needed no merge of their own: shared within the run or cached. */
    reused: number;
    /** Distinct stages already in the cache at start (diagnostics present). */
    cachedAtStart: number;
    /** Merges performed, per stage name. */
    byStage: Record<string, number>;
  };
  evaluations: { performed: number; reused: number };
  pointDiagnostics: number;
  wallSeconds: number;
  diskEstimateBytes: number;
  reportPath: string | null;
  /** Set when the run was interrupted before every point was recorded: what was left behind. */
  interrupted: string | null;
  records: ResultRecord[];
}

export function printSummary(s: RunSummary, out: (l: string) => void): void {
  const byStage = Object.entries(s.merges.byStage)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  out(`summary of ${s.experiment}:`);
  if (s.interrupted) out(`  ${s.interrupted}`);
  out(`  points: ${s.points} (${s.pointsCachedAtStart} complete from the cache at start), failed: ${s.failed}`);
  out(`  merges performed: ${s.merges.performed}${byStage ? ` (${byStage})` : ''}`);
  out(`  merges reused from cache: ${s.merges.reused} (stage uses that needed no merge of their own; ${s.merges.cachedAtStart} stages were cached at start)`);
  out(`  evaluations performed: ${s.evaluations.performed}, reused: ${s.evaluations.reused}`);
  out(`  final-vs-parents diagnostics computed: ${s.pointDiagnostics}`);
  out(`  wall time: ${s.wallSeconds.toFixed(1)} s`);
  out(`  results: ${s.resultsFile}${s.reportPath ? `; report: ${s.reportPath}` : ''}`);
}
