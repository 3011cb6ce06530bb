/**
 * What a merge measured about itself, tensor by tensor. These numbers are what explain a
 * collapse, so every method in the task-arithmetic family fills them while it merges.
 * Model keys are the model references as written in the recipe.
 */
export interface TensorDiagnostics {
  tensor: string;
  /** Decoder layer index parsed from the name (`model.layers.N.`), null for embeddings, final norm, lm_head. */
  layer: number | null;
  numel: number;
  /** ||X_i - B||_2 before sparsification, per model. */
  taskVectorNorm: Record<string, number>;
  /** Cosine between each pair of task vectors, key `a|b` (models in recipe order). */
  cosine: Record<string, number>;
  /** Fraction of elements where the (weighted, sparsified) deltas of at least two models have opposite signs. */
  signConflict: number;
  /** Fraction of each model's delta elements kept by sparsification (1 without sparsification). */
  keptFraction: Record<string, number>;
  /** Factor the kept delta was scaled by (1 without rescale; mean of 1/p for della's per-element rule). */
  rescale: Record<string, number>;
  /** ||merged - B||_2. */
  mergedDeltaNorm: number;
  /** ||merged - B|| / ||X_i - B|| per model (Infinity when the model's delta is zero). */
  mergedDeltaRelToParent: Record<string, number>;
}
