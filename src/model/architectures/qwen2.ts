/**
 * `Qwen2ForCausalLM` (Qwen1.5, Qwen2, Qwen2.5). Defaults follow transformers' Qwen2Config.
 *
 * @module
 */

import type { ArchitectureSpec } from "./spec.ts";
import { normaliseLlamaFamily } from "./llama_family.ts";

/** Qwen2: q/k/v projections always carry biases (o_proj does not); optional sliding window. */
export const qwen2: ArchitectureSpec = {
  name: "Qwen2ForCausalLM",
  modelType: "qwen2",
  normalise: (config) =>
    normaliseLlamaFamily(config, {
      architecture: "Qwen2ForCausalLM",
      maxPositionEmbeddings: 32768,
      numKeyValueHeads: 32,
      headDim: null,
      bosTokenId: null,
      eosTokenId: null,
      qkvBias: true,
      hasAttentionBiasKey: false,
      hasMlpBiasKey: false,
      qkNorm: false,
      slidingWindow: "qwen",
    }),
};
