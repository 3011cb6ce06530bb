import path from 'node:path';
import type { ReportSummary } from './generate.js';
import { formatAxisValue } from './metrics.js';

/** What `mergelab report` (and the end of `mergelab run`) prints: where the report is, what to use, what collapsed beyond the noise. */
export function formatReportSummary(s: ReportSummary, opts: { maxFlags?: number; cwd?: string } = {}): string {
  const rel = (p: string): string => {
    const r = path.relative(opts.cwd ?? process.cwd(), p);
    return r === '' ? '.' : r.startsWith('..') ? p : r;
  };
  const c = s.counts;
  const lines = [
    `report ${s.experiment}: ${c.merges} merged points (${c.failed} failed), ${c.references} references, ${c.flagged} collapsed beyond the noise${c.borderline ? ` (${c.borderline} more within it)` : ''}`,
    `  page    ${rel(s.files.html)}`,
    `  data    ${rel(s.files.csv)}, ${rel(s.files.json)}`,
  ];
  if (s.files.charts.length) lines.push(`  charts  ${s.files.charts.length} SVGs in ${rel(path.dirname(s.files.charts[0]))}`);
  if (s.headlines.length) {
    lines.push('findings:');
    s.headlines.forEach((h, i) => lines.push(`  ${i + 1}. ${h}`));
  }
  const max = opts.maxFlags ?? 5;
  const collapsed = s.flags.filter((f) => f.collapsed);
  if (collapsed.length) {
    lines.push(`worst collapses:`);
    for (const f of collapsed.slice(0, max)) {
      const axes = Object.entries(f.axes).filter(([k]) => k !== 'seed').map(([k, v]) => `${k}=${formatAxisValue(v)}`).join(' ');
      // Sweep point ids usually spell out their setting already.
      const named = f.point.includes(f.variant) && Object.keys(f.axes).every((k) => f.point.includes(k));
      lines.push(named ? `  ${f.point}` : `  ${f.point} (${f.variant}${axes ? ' ' + axes : ''}${f.seed !== null ? ` seed ${f.seed}` : ''})`);
      lines.push(`    ${f.violations[0].message}${f.violations.length > 1 ? ` (+${f.violations.length - 1} more)` : ''}`);
      if (f.standouts[0]) lines.push(`    why: ${f.standouts[0].text}`);
    }
    if (collapsed.length > max) lines.push(`  ... and ${collapsed.length - max} more in the page`);
  }
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
