/**
 * What a tensor's name says about it, for every naming scheme mergelab meets (Hugging Face Llama,
 * Mistral, Qwen; GPT-2; GPT-NeoX; BERT-style encoders; original Llama checkpoints). The merge
 * planner, the methods, the diagnostics and the report all ask here, so they agree on which layer
 * a tensor belongs to and whether its rows follow the vocabulary.
 */

/** What a tensor does, coarsely: the groups diagnostics are summed over. */
export type TensorKind = 'embedding' | 'lm_head' | 'attention' | 'mlp' | 'norm' | 'other';

/** Where a tensor sits in the stack: before the decoder layers, inside one, or after them. */
export type StackPosition = 'before' | 'layer' | 'after';

export interface TensorName {
  name: string;
  /** Decoder layer index (`model.layers.N.`, GPT-2 `h.N.`, `blocks.N.`, BERT `layer.N.`); null outside the layers. */
  layer: number | null;
  position: StackPosition;
  kind: TensorKind;
  /**
   * Rows follow the vocabulary (token and position embeddings, output heads): fine-tunes that added
   * tokens have more rows, so methods crop these to a common block instead of skipping them.
   */
  isEmbedding: boolean;
  /** The name inside its layer without `.weight` (`self_attn.q_proj`); outside the layers, the whole name without `.weight`. */
  module: string;
}

const INPUT_EMBEDDINGS = new Set([
  'embed_tokens', // Llama, Mistral, Qwen
  'wte', // GPT-2 token embedding
  'wpe', // GPT-2 position embedding
  'embed_in', // GPT-NeoX
  'word_embeddings', // BERT, Bloom, Falcon
  'tok_embeddings', // original Llama checkpoints
]);

/** Output heads; `output` counts only at the top level (original Llama's `output.weight`), never inside a layer. */
const HEADS = new Set(['lm_head', 'embed_out']);

const LAYER_RE = /(^|\.)(layers|h|blocks|layer|block)\.(\d+)(?=\.|$)/;

function kindOf(parts: string[], inLayer: boolean): TensorKind {
  if (parts.some((p) => INPUT_EMBEDDINGS.has(p))) return 'embedding';
  if (parts.some((p) => HEADS.has(p)) || (!inLayer && parts[0] === 'output')) return 'lm_head';
  // Norms first: `post_attention_layernorm` is a norm, not attention.
  if (parts.some((p) => /norm$|^ln_?\d*$|layernorm/i.test(p))) return 'norm';
  if (parts.some((p) => /attn|attention|^[qkvo]_proj$/.test(p))) return 'attention';
  if (parts.some((p) => /^(mlp|feed_forward|ffn)$|^(gate|up|down)_proj$|^c_fc$|^dense_(h_to_4h|4h_to_h)$/.test(p))) return 'mlp';
  return 'other';
}

export function parseTensorName(name: string): TensorName {
  const m = LAYER_RE.exec(name);
  const layer = m ? Number(m[3]) : null;
  const parts = name.split('.');
  const kind = kindOf(parts, layer !== null);
  const isEmbedding = kind === 'embedding' || kind === 'lm_head';
  const position: StackPosition = layer !== null ? 'layer' : kind === 'embedding' ? 'before' : 'after';
  const inner = m ? name.slice(m.index + m[0].length + 1) : name;
  return { name, layer, position, kind, isEmbedding, module: inner.replace(/\.weight$/, '') };
}

export function layerIndex(name: string): number | null {
  return parseTensorName(name).layer;
}

export function isEmbeddingTensor(name: string): boolean {
  return parseTensorName(name).isEmbedding;
}

/** The same tensor in another layer (`model.layers.7.mlp...` -> `model.layers.2.mlp...`); names outside the layers are returned unchanged. */
export function withLayer(name: string, layer: number): string {
  return name.replace(LAYER_RE, (_all, dot: string, word: string) => `${dot}${word}.${layer}`);
}
