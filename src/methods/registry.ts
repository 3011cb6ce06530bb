/**
 * Finds a merge method by its mergekit name. Built-in methods are listed below, one line each;
 * methods defined outside the repository are loaded from the modules named in MERGELAB_METHODS.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../util/errors.js';
import { isMergeMethod } from './define.js';
import { linear } from './linear.js';
import { modelStock } from './model-stock.js';
import { passthrough } from './passthrough.js';
import { slerp } from './slerp.js';
import { TASK_ARITHMETIC_FAMILY, makeTaskArithmeticMethod } from './task-arithmetic.js';
import type { MergeMethod } from './types.js';

const BUILT_IN: readonly MergeMethod[] = [
  ...TASK_ARITHMETIC_FAMILY.map(makeTaskArithmeticMethod),
  linear,
  slerp,
  modelStock,
  passthrough,
];

/**
 * Modules (separated like PATH) whose default export is a method made by `defineMethod`, or an
 * array of them. Read by every process that merges or plans, sweep workers included, since they
 * inherit the environment.
 */
export const METHODS_ENV = 'MERGELAB_METHODS';

const METHODS = new Map<string, MergeMethod>(BUILT_IN.map((m) => [m.name, m]));

/** Add a method; a name already taken is refused (a plugin cannot silently replace a built-in). */
export function registerMethod(m: MergeMethod, from?: string): void {
  const had = METHODS.get(m.name);
  if (had && had !== m) {
    throw new UserError(`merge_method ${JSON.stringify(m.name)} is already defined${had.source === null ? ' (built in)' : ''}; choose another name`, { file: from });
  }
  METHODS.set(m.name, m);
}

export function listMethods(): string[] {
  return [...METHODS.keys()];
}

export function getMethod(name: string): MergeMethod {
  const m = METHODS.get(name);
  if (!m) {
    throw new UserError(`unknown merge_method ${JSON.stringify(name)}; known methods: ${listMethods().join(', ')}`, { field: 'merge_method' });
  }
  return m;
}

/** Names of every registered method's global parameters: a key that is global for some method is never per-model. */
export function globalParamNames(): Set<string> {
  return new Set([...METHODS.values()].flatMap((m) => Object.keys(m.globalParams.shape)));
}

async function loadPlugin(file: string): Promise<void> {
  const abs = path.resolve(file);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(abs);
  } catch {
    throw new UserError(`${METHODS_ENV} names ${abs}, which cannot be read`, { field: METHODS_ENV });
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(abs).href)) as { default?: unknown };
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new UserError(`${METHODS_ENV} names ${abs}, which does not load: ${why}`, { file: abs, field: METHODS_ENV });
  }
  const list = Array.isArray(mod.default) ? mod.default : [mod.default];
  if (list.length === 0 || !list.every(isMergeMethod)) {
    throw new UserError(`${abs}: the default export must be a merge method made by defineMethod, or an array of them`, { file: abs, field: 'export default' });
  }
  // Cached merges are keyed by the sources that made them; for a plugin that is its own file.
  const source = `plugin-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`;
  for (const m of list) registerMethod({ ...m, source }, abs);
}

let plugins: Promise<void> | null = null;

/** Load the MERGELAB_METHODS modules once per process; every planner awaits this before looking a method up. */
export function methodsReady(): Promise<void> {
  plugins ??= (async () => {
    const files = (process.env[METHODS_ENV] ?? '').split(path.delimiter).filter((f) => f.trim() !== '');
    for (const f of files) await loadPlugin(f);
  })();
  return plugins;
}

export type { MergeMethod, TensorMergeInput, TensorMergeOutput, ModelTensor, RescaleRule } from './types.js';
