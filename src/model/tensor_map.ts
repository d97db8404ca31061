/**
 * The tensors a Llama-family model needs, under their Hugging Face names, with hearth's role, layer
 * and the exact shape the config implies (Hugging Face nn.Linear layout: (out_features, in_features)).
 *
 * @module
 */

import type { ModelConfig, TensorRoleName } from "./description.ts";

/** One tensor the model needs. */
export interface ExpectedTensor {
  /** Hugging Face name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  role: TensorRoleName;
  /** Layer index, or -1 for whole-model tensors. */
  layer: number;
  shape: number[];
  /** Which config values give the shape, for messages: `hidden_size 64 / intermediate_size 128`. */
  dims: string;
}

/**
 * Every tensor `config` requires, in load order: embedding, layers 0..n-1, final norm, lm_head.
 * lm_head is left out when embeddings are tied; q/k/v biases only with qkvBias; q/k norms only with
 * qkNorm.
 */
export function expectedTensors(config: ModelConfig): ExpectedTensor[] {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = config;
  const q = nHeads * headDim;
  const kv = nKvHeads * headDim;
  const D = `hidden_size ${dim}`;
  const Q = `num_attention_heads ${nHeads} × head_dim ${headDim}`;
  const KV = `num_key_value_heads ${nKvHeads} × head_dim ${headDim}`;
  const MLP = `${D} / intermediate_size ${hiddenDim}`;
  const out: ExpectedTensor[] = [];
  const add = (name: string, role: TensorRoleName, layer: number, shape: number[], dims: string) =>
    out.push({ name, role, layer, shape, dims });

  add("model.embed_tokens.weight", "tokenEmbd", -1, [vocabSize, dim], `vocab_size ${vocabSize} / ${D}`);
  for (let l = 0; l < config.nLayers; l++) {
    const p = `model.layers.${l}.`;
    add(p + "input_layernorm.weight", "attnNorm", l, [dim], D);
    add(p + "self_attn.q_proj.weight", "wq", l, [q, dim], `${Q} / ${D}`);
    add(p + "self_attn.k_proj.weight", "wk", l, [kv, dim], `${KV} / ${D}`);
    add(p + "self_attn.v_proj.weight", "wv", l, [kv, dim], `${KV} / ${D}`);
    add(p + "self_attn.o_proj.weight", "wo", l, [dim, q], `${D} / ${Q}`);
    if (config.qkvBias) {
      add(p + "self_attn.q_proj.bias", "bq", l, [q], Q);
      add(p + "self_attn.k_proj.bias", "bk", l, [kv], KV);
      add(p + "self_attn.v_proj.bias", "bv", l, [kv], KV);
    }
    if (config.qkNorm) {
      add(p + "self_attn.q_norm.weight", "qNorm", l, [headDim], `head_dim ${headDim}`);
      add(p + "self_attn.k_norm.weight", "kNorm", l, [headDim], `head_dim ${headDim}`);
    }
    add(p + "post_attention_layernorm.weight", "ffnNorm", l, [dim], D);
    add(p + "mlp.gate_proj.weight", "wGate", l, [hiddenDim, dim], MLP);
    add(p + "mlp.up_proj.weight", "wUp", l, [hiddenDim, dim], MLP);
    add(p + "mlp.down_proj.weight", "wDown", l, [dim, hiddenDim], MLP);
  }
  add("model.norm.weight", "outputNorm", -1, [dim], D);
  if (!config.tiedEmbeddings) {
    add("lm_head.weight", "lmHead", -1, [vocabSize, dim], `vocab_size ${vocabSize} / ${D}`);
  }
  return out;
}
