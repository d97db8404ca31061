/**
 * `MistralForCausalLM`. Defaults follow transformers' MistralConfig, including its quirks:
 * `num_key_value_heads` defaults to 8 and `sliding_window` to 4096 when the keys are absent.
 *
 * @module
 */

import type { ArchitectureSpec } from "./spec.ts";
import { normaliseLlamaFamily } from "./llama_family.ts";

/** Mistral: Llama layout plus a sliding window on every layer (`sliding_window`, null = none). */
export const mistral: ArchitectureSpec = {
  name: "MistralForCausalLM",
  modelType: "mistral",
  normalise: (config) =>
    normaliseLlamaFamily(config, {
      architecture: "MistralForCausalLM",
      maxPositionEmbeddings: 4096 * 32,
      numKeyValueHeads: 8,
      headDim: null,
      bosTokenId: 1,
      eosTokenId: 2,
      qkvBias: false,
      hasAttentionBiasKey: false,
      hasMlpBiasKey: false,
      qkNorm: false,
      slidingWindow: "all-layers",
    }),
};
