import type { Kernels } from '../../src/kernels/types.js';
import type { ModelTensor, TensorMergeInput } from '../../src/methods/types.js';

export function input(
  kernels: Kernels,
  base: Float32Array | null,
  shape: number[],
  models: Array<{ ref: string; data: Float32Array; shape?: number[]; params?: Record<string, number> }>,
  global: Record<string, unknown> = {},
  extra: Partial<TensorMergeInput> = {},
): TensorMergeInput {
  return {
    tensor: 'model.layers.3.mlp.down_proj.weight',
    shape,
    base,
    baseRef: base ? 'base' : null,
    models: models.map((m): ModelTensor => ({ ref: m.ref, data: m.data, shape: m.shape ?? shape, params: m.params ?? {} })),
    global,
    kernels,
    seed: 42,
    stage: 'stage1',
    isEmbedding: false,
    ...extra,
  };
}

export const f32 = (...v: number[]) => Float32Array.from(v);
