/**
 * What a tensor's name says about it. Embedding-like tensors (token embeddings and output heads)
 * are the ones whose row count follows the vocabulary, so fine-tunes that added tokens have more
 * rows: the task-arithmetic family crops them to the base instead of skipping them.
 */
const EMBEDDING_PARTS = [
  'embed_tokens', // Llama, Mistral, Qwen
  'lm_head',
  'wte', // GPT-2 token embedding
  'wpe', // GPT-2 position embedding
  'embed_out', // GPT-NeoX head
  'embed_in', // GPT-NeoX embedding
  'word_embeddings', // BERT, Bloom, Falcon
  'tok_embeddings', // original Llama checkpoints
  'output', // original Llama head: `output.weight`
];

export function isEmbeddingTensor(name: string): boolean {
  const parts = name.split('.');
  // `output` alone is the Llama head only at the top level; inside a layer (`attention.output`) it is not.
  return parts.some((p, i) => EMBEDDING_PARTS.includes(p) && (p !== 'output' || i === 0));
}

const LAYER_RE = /(?:^|\.)(?:layers|h|blocks|layer|block)\.(\d+)(?:\.|$)/;

/** Decoder layer index from `model.layers.N.` (and GPT-2 `h.N.`, `blocks.N.`), null outside the layers. */
export function layerIndex(name: string): number | null {
  const m = LAYER_RE.exec(name);
  return m ? Number(m[1]) : null;
}
