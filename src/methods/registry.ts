/** Finds a merge method by its mergekit name. Each method declares its parameter schemas beside its code. */
import { UserError } from '../util/errors.js';
import { arceeFusion } from './arcee-fusion.js';
import { karcher } from './karcher.js';
import { linear } from './linear.js';
import { modelStock } from './model-stock.js';
import { multislerp } from './multislerp.js';
import { nearswap } from './nearswap.js';
import { nuslerp } from './nuslerp.js';
import { passthrough } from './passthrough.js';
import { ram, ramPlusTl } from './ram.js';
import { sce } from './sce.js';
import { slerp } from './slerp.js';
import { TASK_ARITHMETIC_FAMILY, makeTaskArithmeticMethod } from './task-arithmetic.js';
import type { MergeMethod } from './types.js';

const METHODS: ReadonlyMap<string, MergeMethod> = new Map(
  [
    ...TASK_ARITHMETIC_FAMILY.map(makeTaskArithmeticMethod),
    linear,
    slerp,
    modelStock,
    passthrough,
    sce,
    nuslerp,
    multislerp,
    karcher,
    nearswap,
    arceeFusion,
    ram,
    ramPlusTl,
  ].map((m) => [m.name, m]),
);

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

export type { MergeMethod, TensorMergeInput, TensorMergeOutput, ModelTensor, RescaleRule } from './types.js';
export { isEmbeddingTensor, layerIndex } from './names.js';
