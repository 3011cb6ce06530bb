import type { AxisGroup, AxisValue, Experiment, Variant } from './experiment.js';

/**
 * Expanding an experiment's variants into points: the grid product of the axis groups (a zip
 * group counts as one axis), with every `${name}` of the recipe template filled in. Seeds are
 * applied later, by the planner, because only a recipe with a random stage is swept over them.
 */

export interface TemplatePoint {
  variant: Variant;
  axes: Record<string, AxisValue>;
  /** The recipe with placeholders filled (model placeholders become the model's name). */
  recipe: string;
}

/** How an axis value is written into the recipe's YAML. Strings go in raw so a value can be a method name. */
export function renderValue(v: AxisValue): string {
  if (v === null) return 'null';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return '.nan';
    if (!Number.isFinite(v)) return v > 0 ? '.inf' : '-.inf';
    return String(v);
  }
  return String(v);
}

export function fillTemplate(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{([^}\n]*)\}/g, (whole, name: string) => {
    const v = values[name.trim()];
    // The experiment loader rejects unknown placeholders, so this only guards direct callers.
    if (v === undefined) throw new Error(`internal: unknown placeholder ${whole}`);
    return v;
  });
}

function product(groups: AxisGroup[]): Array<Record<string, AxisValue>> {
  let acc: Array<Record<string, AxisValue>> = [{}];
  for (const g of groups) {
    const next: Array<Record<string, AxisValue>> = [];
    for (const partial of acc) {
      for (const row of g.rows) {
        const p = { ...partial };
        g.names.forEach((n, j) => (p[n] = row[j]));
        next.push(p);
      }
    }
    acc = next;
  }
  return acc;
}

export function expandVariant(exp: Experiment, v: Variant): TemplatePoint[] {
  const modelValues = Object.fromEntries(Object.keys(exp.models).map((m) => [m, m]));
  return product(v.groups).map((axes) => ({
    variant: v,
    axes,
    recipe: fillTemplate(v.template.text, { ...modelValues, ...Object.fromEntries(Object.entries(axes).map(([k, x]) => [k, renderValue(x)])) }),
  }));
}

export function expandExperiment(exp: Experiment): TemplatePoint[] {
  return exp.variants.flatMap((v) => expandVariant(exp, v));
}

/** Stable, readable point id: `chained density=0.3 rescale=l1 seed=1`. */
export function pointId(variant: string, axes: Record<string, AxisValue>, seed: number | null): string {
  const parts = [variant, ...Object.entries(axes).map(([k, v]) => `${k}=${renderValue(v)}`)];
  if (seed !== null) parts.push(`seed=${seed}`);
  return parts.join(' ');
}
