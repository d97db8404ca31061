/**
 * `LlamaForCausalLM` (Llama 2/3, and the many models that reuse its layout). Defaults follow
 * transformers' LlamaConfig.
 *
 * @module
 */

import type { ArchitectureSpec } from "./spec.ts";
import { normaliseLlamaFamily } from "./llama_family.ts";

/** Llama: no biases (attention_bias / mlp_bias must be false), no sliding window. */
export const llama: ArchitectureSpec = {
  name: "LlamaForCausalLM",
  modelType: "llama",
  normalise: (config) =>
    normaliseLlamaFamily(config, {
      architecture: "LlamaForCausalLM",
      maxPositionEmbeddings: 2048,
      numKeyValueHeads: null,
      headDim: null,
      bosTokenId: 1,
      eosTokenId: 2,
      qkvBias: false,
      hasAttentionBiasKey: true,
      hasMlpBiasKey: true,
      qkNorm: false,
      slidingWindow: "none",
    }),
};
