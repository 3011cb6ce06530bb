import type { SourcePos } from '../util/errors.js';
import type { AxisGroup, AxisValue, Experiment, Template, Variant } from './experiment.js';

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
  /** Where each filled-in value came from, to point a problem in `recipe` back at the file. */
  fills: Fill[];
}

/**
 * One placeholder as filled in: `[start, end)` of the value in the filled recipe, the placeholder's
 * offset and length in the template, and where the value is written in the file (an axis value),
 * or null for a model name (the placeholder itself is then the text to blame) and for an unknown
 * placeholder (filled with a stand-in; already a problem of its own).
 */
export interface Fill {
  start: number;
  end: number;
  templateOffset: number;
  templateLength: number;
  origin: SourcePos | null;
  unknown: boolean;
}

/** A placeholder's replacement: its text, and where the value is written in the file (axis values). */
export interface FillValue {
  text: string;
  origin?: SourcePos;
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

/** Fill a template's placeholders; an unknown one gets a stand-in (its problem is reported by the loader). */
export function fillTemplate(template: Pick<Template, 'text' | 'placeholders'>, values: Record<string, FillValue>): { text: string; fills: Fill[] } {
  let text = '';
  let from = 0;
  const fills: Fill[] = [];
  for (const ph of template.placeholders) {
    text += template.text.slice(from, ph.offset);
    const v = ph.unknown ? undefined : values[ph.name];
    if (!ph.unknown && v === undefined) throw new Error(`internal: no value for placeholder \${${ph.name}}`);
    const start = text.length;
    // An unknown placeholder becomes a plain word (its name), which is valid YAML wherever `${...}`
    // stood; whatever the recipe checks then say about that word lies inside this fill and is dropped.
    text += v ? v.text : /^[A-Za-z_][A-Za-z0-9_]*$/.test(ph.name) ? ph.name : 'unknown_placeholder';
    fills.push({ start, end: text.length, templateOffset: ph.offset, templateLength: ph.length, origin: v?.origin ?? null, unknown: ph.unknown });
    from = ph.offset + ph.length;
  }
  text += template.text.slice(from);
  return { text, fills };
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

function offsetOf(text: string, line: number, col: number): number {
  let start = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return text.length;
    start = nl + 1;
  }
  return Math.min(start + col - 1, text.length);
}

/**
 * Where in the experiment file the text at `line:col` of a point's filled recipe comes from: the
 * axis value when it lies in a filled-in axis value, the placeholder for a model name, the
 * template's own text otherwise. Null inside an unknown placeholder (its problem is said already).
 */
export function filePosOf(tp: Pick<TemplatePoint, 'recipe' | 'fills' | 'variant'>, line: number | undefined, col: number | undefined): SourcePos | null {
  const tpl = tp.variant.template;
  if (line === undefined) return tpl.posAt(1, 1);
  const at = offsetOf(tp.recipe, line, col ?? 1);
  let shift = 0;
  for (const f of tp.fills) {
    if (at < f.start) break;
    if (at < f.end || (f.end === f.start && at === f.start)) {
      if (f.unknown) return null;
      if (f.origin) return f.origin;
      const p = lineCol(tpl.text, f.templateOffset);
      return tpl.posAt(p.line, p.col);
    }
    shift += f.end - f.start - f.templateLength;
  }
  const p = lineCol(tpl.text, at - shift);
  return tpl.posAt(p.line, p.col);
}

function product(groups: AxisGroup[]): Array<{ axes: Record<string, AxisValue>; at: Record<string, SourcePos> }> {
  let acc: Array<{ axes: Record<string, AxisValue>; at: Record<string, SourcePos> }> = [{ axes: {}, at: {} }];
  for (const g of groups) {
    const next: typeof acc = [];
    for (const partial of acc) {
      g.rows.forEach((row, i) => {
        const p = { axes: { ...partial.axes }, at: { ...partial.at } };
        g.names.forEach((n, j) => {
          p.axes[n] = row[j];
          p.at[n] = g.at[i][j];
        });
        next.push(p);
      });
    }
    acc = next;
  }
  return acc;
}

export function expandVariant(exp: Experiment, v: Variant): TemplatePoint[] {
  const modelValues: Record<string, FillValue> = Object.fromEntries(Object.keys(exp.models).map((m) => [m, { text: m }]));
  return product(v.groups).map(({ axes, at }) => {
    const values: Record<string, FillValue> = { ...modelValues };
    for (const [k, x] of Object.entries(axes)) values[k] = { text: renderValue(x), origin: at[k] };
    const { text, fills } = fillTemplate(v.template, values);
    return { variant: v, axes, recipe: text, fills };
  });
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
