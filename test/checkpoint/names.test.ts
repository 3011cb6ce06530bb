import { describe, expect, it } from 'vitest';
import { isEmbeddingTensor, layerIndex, parseTensorName, withLayer } from '../../src/checkpoint/names.js';

describe('tensor names', () => {
  it('say layer, kind, place in the stack and module for every naming scheme', () => {
    const cases: Array<[string, number | null, string, string, boolean, string]> = [
      // name, layer, kind, position, isEmbedding, module
      ['model.embed_tokens.weight', null, 'embedding', 'before', true, 'model.embed_tokens'],
      ['model.layers.3.self_attn.q_proj.weight', 3, 'attention', 'layer', false, 'self_attn.q_proj'],
      ['model.layers.3.self_attn.o_proj.weight', 3, 'attention', 'layer', false, 'self_attn.o_proj'],
      ['model.layers.12.mlp.down_proj.weight', 12, 'mlp', 'layer', false, 'mlp.down_proj'],
      ['model.layers.0.input_layernorm.weight', 0, 'norm', 'layer', false, 'input_layernorm'],
      ['model.layers.0.post_attention_layernorm.weight', 0, 'norm', 'layer', false, 'post_attention_layernorm'],
      ['model.norm.weight', null, 'norm', 'after', false, 'model.norm'],
      ['lm_head.weight', null, 'lm_head', 'after', true, 'lm_head'],
      ['output.weight', null, 'lm_head', 'after', true, 'output'],
      ['tok_embeddings.weight', null, 'embedding', 'before', true, 'tok_embeddings'],
      ['transformer.wte.weight', null, 'embedding', 'before', true, 'transformer.wte'],
      ['transformer.wpe.weight', null, 'embedding', 'before', true, 'transformer.wpe'],
      ['transformer.h.5.attn.c_attn.weight', 5, 'attention', 'layer', false, 'attn.c_attn'],
      ['transformer.h.5.mlp.c_fc.bias', 5, 'mlp', 'layer', false, 'mlp.c_fc.bias'],
      ['transformer.h.5.ln_1.weight', 5, 'norm', 'layer', false, 'ln_1'],
      ['transformer.ln_f.weight', null, 'norm', 'after', false, 'transformer.ln_f'],
      ['gpt_neox.embed_in.weight', null, 'embedding', 'before', true, 'gpt_neox.embed_in'],
      ['embed_out.weight', null, 'lm_head', 'after', true, 'embed_out'],
      ['bert.encoder.layer.2.attention.output.dense.weight', 2, 'attention', 'layer', false, 'attention.output.dense'],
      ['model.rotary_emb.inv_freq', null, 'other', 'after', false, 'model.rotary_emb.inv_freq'],
    ];
    for (const [name, layer, kind, position, isEmbedding, module] of cases) {
      expect(parseTensorName(name), name).toEqual({ name, layer, kind, position, isEmbedding, module });
      expect(layerIndex(name)).toBe(layer);
      expect(isEmbeddingTensor(name)).toBe(isEmbedding);
    }
  });

  it('move a tensor to another layer, and leave names outside the layers alone', () => {
    expect(withLayer('model.layers.7.mlp.up_proj.weight', 2)).toBe('model.layers.2.mlp.up_proj.weight');
    expect(withLayer('transformer.h.10.attn.c_proj.weight', 0)).toBe('transformer.h.0.attn.c_proj.weight');
    expect(withLayer('model.norm.weight', 3)).toBe('model.norm.weight');
    // Only the layer index changes, not a number elsewhere in the name.
    expect(withLayer('model.layers.1.block_sparse_moe.experts.4.w1.weight', 6)).toBe('model.layers.6.block_sparse_moe.experts.4.w1.weight');
  });
});
