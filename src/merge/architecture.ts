/**
 * mergekit refuses to merge models whose configs name different architectures unless
 * `--allow-crimes` is given (mergekit/architecture `get_architecture_info`); so do we, per stage,
 * from the config.json of each input (or the planned config of an earlier stage).
 */
import type { ResolvedStage } from '../recipe/recipe.js';
import type { Problem } from '../util/errors.js';
import type { HeaderView } from './plan.js';

export function architectureProblem(stage: ResolvedStage, views: Record<string, HeaderView>): Problem | null {
  const seen = new Map<string, string[]>();
  for (const ref of Object.keys(stage.inputs)) {
    const a = views[ref]?.config?.architectures;
    const arch = Array.isArray(a) && typeof a[0] === 'string' ? a[0] : null;
    if (arch === null) continue;
    seen.set(arch, [...(seen.get(arch) ?? []), ref]);
  }
  if (seen.size <= 1) return null;
  const list = [...seen].map(([arch, refs]) => `${arch} (${refs.map((r) => `'${r}'`).join(', ')})`).join(', ');
  return { ...stage.doc.pos([]), message: `${stage.label ? stage.label + ': ' : ''}the models' config.json name different architectures: ${list}; mergekit refuses to mix architectures, and so does mergelab unless --allow-crimes is given` };
}
