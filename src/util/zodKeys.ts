import type { z } from 'zod';

/**
 * The field names a zod schema accepts at a path inside it, so that an unknown key can be
 * answered with the nearest known one. Walks through optional/nullable/default wrappers, pipes,
 * arrays, records, tuples and unions; an empty list when the path leads to no object.
 */

type Def = { type: string; [k: string]: unknown };
const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def?: Def } } | undefined)?._zod?.def;

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional', 'success']);

/** The schemas a value at this node may be checked by (a pipe is checked by both ends, a union by any option). */
function expand(s: unknown, depth = 0): unknown[] {
  const def = defOf(s);
  if (!def || depth > 20) return [];
  if (WRAPPERS.has(def.type)) return expand(def.innerType, depth + 1);
  if (def.type === 'lazy') return expand((def.getter as () => unknown)(), depth + 1);
  if (def.type === 'pipe') return [...expand(def.in, depth + 1), ...expand(def.out, depth + 1)];
  if (def.type === 'union') return (def.options as unknown[]).flatMap((o) => expand(o, depth + 1));
  return [s];
}

function child(s: unknown, key: string | number): unknown[] {
  const def = defOf(s)!;
  if (def.type === 'object' && typeof key === 'string') {
    const shape = def.shape as Record<string, unknown>;
    return key in shape ? [shape[key]] : [];
  }
  if (def.type === 'array' && typeof key === 'number') return [def.element];
  if (def.type === 'record' && typeof key === 'string') return [def.valueType];
  if (def.type === 'tuple' && typeof key === 'number') return (def.items as unknown[])[key] !== undefined ? [(def.items as unknown[])[key]] : [];
  return [];
}

export function knownKeysAt(schema: z.ZodType, path: ReadonlyArray<string | number>): string[] {
  let nodes = expand(schema);
  for (const k of path) nodes = nodes.flatMap((n) => child(n, k)).flatMap((n) => expand(n));
  const keys = new Set<string>();
  for (const n of nodes) {
    const def = defOf(n)!;
    if (def.type === 'object') for (const k of Object.keys(def.shape as object)) keys.add(k);
  }
  return [...keys];
}
