import type { ParamBlock, Scalar, ScalarOrGradient, Setting } from './schema.js';

/**
 * Parameter values as mergekit evaluates them, per output tensor (spec section 3).
 *
 * Gradients: for a tensor in layer `l` of an output slice of `L` layers, `t = l/(L-1)` (1 when
 * L = 1), `s = t*(n-1)`, interpolate list[floor(s)] and list[floor(s)+1]. Tensors outside the
 * decoder layers (embeddings, final norm, lm_head) use t = 0, as the spec states.
 */

/** Position of a layer within its output slice, as a gradient coordinate in [0, 1]. */
export function gradientT(layerInSlice: number | null, sliceLayers: number): number {
  if (layerInSlice === null) return 0;
  if (sliceLayers <= 1) return 1;
  return layerInSlice / (sliceLayers - 1);
}

export function interpolate(list: readonly number[], t: number): number {
  if (list.length === 1) return list[0];
  const s = t * (list.length - 1);
  const i = Math.min(Math.floor(s), list.length - 1);
  const j = Math.min(i + 1, list.length - 1);
  const f = s - i;
  if (f === 0) return list[i];
  return (1 - f) * list[i] + f * list[j];
}

function isConditionalList(v: Setting): v is Array<{ filter?: string | null; value: ScalarOrGradient }> {
  return Array.isArray(v) && v.length > 0 && typeof v[0] === 'object' && v[0] !== null;
}

/** One setting for one tensor; `undefined` when it is a filter list none of whose filters match. */
export function evaluateSetting(setting: Setting, tensorName: string, t: number): Scalar | undefined {
  if (isConditionalList(setting)) {
    for (const c of setting) {
      if (c.filter === undefined || c.filter === null || c.filter === '*' || tensorName.includes(c.filter)) {
        return evaluateSetting(c.value as Setting, tensorName, t);
      }
    }
    return undefined;
  }
  if (Array.isArray(setting)) return interpolate(setting as number[], t);
  return setting;
}

/** Where a resolved value came from, for messages ("models[1].parameters.weight"). */
export interface Found {
  value: Scalar;
  level: number;
}

/** Look `key` up through `levels` (most specific first); the first level with a matching value wins. */
export function lookupParam(levels: readonly ParamBlock[], key: string, tensorName: string, t: number): Found | undefined {
  for (let level = 0; level < levels.length; level++) {
    const s = levels[level][key];
    if (s === undefined) continue;
    const v = evaluateSetting(s, tensorName, t);
    if (v !== undefined) return { value: v, level };
  }
  return undefined;
}
