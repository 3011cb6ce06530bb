/**
 * The findings a user reads first, as sentences generated from the analyses: what to use for each
 * goal (with its intervals and how many settings are as good within the noise), how the
 * highlighted settings compare with it, how much collapsed beyond the noise, and where a chain
 * loses a skill. Also printed at the end of `mergelab run`. Pure.
 */
import type { CollapseFlag } from './collapse.js';
import type { VariantExplanation } from './explain.js';
import { fmtInterval, fmtPct, fmtScored, pctDiff } from './format.js';
import type { MetricInfo } from './metrics.js';
import type { Ranked, Recommendation, Scoreboard } from './recommend.js';

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

const join = (xs: readonly string[]): string => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);

/** "keeps 64% [51%, 77%] of math's skill and 64% [..] of chat's": a setting's per-parent shares. */
export function keptText(board: Scoreboard, r: Ranked): string {
  const parts = board.parents().flatMap((p) => {
    const s = r.row.retention[p];
    return s ? [`${fmtPct(s.value, s.interval)} of ${p}'s`] : [];
  });
  return parts.length ? `keeps ${join(parts)} skill` : '';
}

/** The headline scores of a setting with their intervals. */
export function scoresText(metrics: readonly MetricInfo[], r: Ranked): string {
  return metrics.flatMap((m) => {
    const s = r.row.scores[m.key];
    return s ? [`${m.key} ${fmtScored(m, s.value, s.interval)}`] : [];
  }).join(', ');
}

const seedsText = (r: Ranked): string => (r.row.group.records.length > 1 ? `, ${r.row.group.records.length} seeds` : '');

export function recommendationSentence(board: Scoreboard, rec: Recommendation, shown: readonly MetricInfo[]): string {
  const b = rec.best;
  const kept = rec.goal.maximize ? '' : `${keptText(board, b)} (`;
  const close = rec.goal.maximize ? '' : ')';
  const peers = rec.peers.length ? `${rec.peers.length} other setting${rec.peers.length > 1 ? 's are' : ' is'} not worse within the noise` : 'every other setting is worse beyond the noise';
  return `To ${rec.goal.name}, use '${b.row.group.label}'${seedsText(b)}: it ${kept}${scoresText(shown, b)}${close}; ${peers}.`;
}

export function highlightSentence(board: Scoreboard, rec: Recommendation, h: { label: string; ranked: Ranked }, shown: readonly MetricInfo[]): string {
  const r = h.ranked;
  if (r === rec.best) return `${h.label} ('${r.row.group.label}') is the recommendation itself.`;
  const pct = !rec.goal.maximize;
  const by = r.diff ? (pct ? `: ${pctDiff(r.objective.value - rec.best.objective.value, r.diff)}` : `: ${fmtInterval(board.metrics.find((m) => m.key === rec.goal.maximize)!, r.diff)}`) : '';
  const cmp = r.verdict === 'worse' ? `worse than the recommendation beyond the noise${by}` : r.verdict === 'within noise' ? `within the noise of the recommendation${by}` : r.verdict === 'better' ? 'better than the recommendation' : 'not comparable with the recommendation (no interval)';
  const objective = pct ? `worst share kept ${fmtPct(r.objective.value, r.objective.interval)}` : `${rec.objective} ${r.objective.value}`;
  return `${h.label} ('${r.row.group.label}'${seedsText(r)}) ${keptText(board, r)} (${scoresText(shown, r)}); ${objective}, ${cmp}.`;
}

export function collapseSentence(flags: readonly CollapseFlag[], merges: number, byVariant: ReadonlyMap<string, number>): string {
  const hard = flags.filter((f) => f.collapsed);
  const soft = flags.length - hard.length;
  const count = new Map<string, number>();
  for (const f of hard) count.set(f.variant, (count.get(f.variant) ?? 0) + 1);
  const [worst] = [...count.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const where = worst ? `; most in '${worst[0]}' (${worst[1]} of ${byVariant.get(worst[0]) ?? '?'})` : '';
  const borderline = soft ? ` ${soft} more ${soft > 1 ? 'are' : 'is'} past a limit only within the noise.` : '';
  return `${hard.length} of ${merges} merged points collapsed beyond the noise${where}.${borderline}`;
}

/** Findings in page order. */
export function findings(board: Scoreboard, recs: readonly Recommendation[], flags: readonly CollapseFlag[], explanations: readonly VariantExplanation[], merges: number, byVariant: ReadonlyMap<string, number>): string[] {
  const shown = board.owners.map((o) => o.metric);
  const out: string[] = [];
  for (const rec of recs) {
    out.push(recommendationSentence(board, rec, shown));
    for (const h of rec.highlights) out.push(capitalize(highlightSentence(board, rec, h, shown)));
  }
  if (merges) out.push(collapseSentence(flags, merges, byVariant));
  for (const e of explanations) out.push(...e.text.stage);
  return out;
}

