/**
 * `Qwen3ForCausalLM` (dense Qwen3). Defaults follow transformers' Qwen3Config; note `head_dim`
 * defaults to 128, not hidden_size / num_attention_heads.
 *
 * @module
 */

import type { ArchitectureSpec } from "./spec.ts";
import { normaliseLlamaFamily } from "./llama_family.ts";

/** Qwen3: per-head RMSNorm of q and k, no biases (attention_bias must be false). */
export const qwen3: ArchitectureSpec = {
  name: "Qwen3ForCausalLM",
  modelType: "qwen3",
  normalise: (config) =>
    normaliseLlamaFamily(config, {
      architecture: "Qwen3ForCausalLM",
      maxPositionEmbeddings: 32768,
      numKeyValueHeads: 32,
      headDim: 128,
      bosTokenId: null,
      eosTokenId: null,
      qkvBias: false,
      hasAttentionBiasKey: true,
      hasMlpBiasKey: false,
      qkNorm: true,
      slidingWindow: "qwen",
    }),
};
