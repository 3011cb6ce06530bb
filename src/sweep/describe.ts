import type { Plan, StageNode } from './plan.js';
import { pointComplete, type Have } from './scan.js';

/** `mergelab run --dry-run`: every point, the stages it needs and what the cache holds of them. */

function stageLine(s: StageNode, state: string): string {
  return `    ${s.name} (${s.method}${s.random ? `, seed ${s.seed}` : ''}) ${s.key.slice(0, 10)}: ${state}`;
}

export function describePlan(plan: Plan, have: Have, merges: Set<string>, out: (l: string) => void): void {
  const printed = new Set<string>();
  for (const p of plan.points) {
    const complete = pointComplete(p, have);
    out(`${complete ? '[cached]' : '[to run]'} ${p.id}`);
    if (p.role !== 'merge') {
      out(`    reference ${p.modelDir}: evaluation ${have.evals.has(p.evalKey) ? 'cached' : 'to run'}`);
      continue;
    }
    for (const k of p.stages) {
      const s = plan.stages.get(k)!;
      const shared = s.points.length > 1 ? (printed.has(k) ? ', shared (listed above)' : `, shared by ${s.points.length} points`) : '';
      printed.add(k);
      const state = merges.has(k)
        ? have.folder.has(k)
          ? 'cached checkpoint, diagnostics to recompute'
          : 'to merge'
        : have.folder.has(k)
          ? 'cached'
          : 'merged earlier (checkpoint deleted, diagnostics kept)';
      out(stageLine(s, state + shared));
    }
    out(`    evaluation: ${have.evals.has(p.evalKey) ? 'cached' : 'to run'}${p.pointDiag ? `; final-vs-parents diagnostics: ${have.pds.has(p.pointDiag.key) ? 'cached' : 'to compute'}` : ''}`);
  }
}
