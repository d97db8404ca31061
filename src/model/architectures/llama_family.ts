/**
 * The normalisation shared by the Llama-family architectures: reads config.json keys with
 * transformers' names and defaults into a {@link ModelConfig}. Each architecture file states only how
 * it differs (defaults, biases, q/k norms, sliding window), so the differences are easy to audit.
 *
 * @module
 */

import type { ConfigReader } from "../config_fields.ts";
import { MAX_DIMENSION, MAX_HEAD_DIM, MAX_LAYERS, type ModelConfig } from "../description.ts";
import { readRopeParameters, ropeInvFreq } from "../rope.ts";

/** How one architecture departs from plain Llama. Defaults are transformers' for that config class. */
export interface FamilyTraits {
  /** `architectures[0]`, e.g. `LlamaForCausalLM`. */
  architecture: string;
  /** Used when `max_position_embeddings` is absent. */
  maxPositionEmbeddings: number;
  /** Used when `num_key_value_heads` is absent; null: same as `num_attention_heads`. */
  numKeyValueHeads: number | null;
  /** Used when `head_dim` is absent or null; null: hidden_size / num_attention_heads. */
  headDim: number | null;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /** q/k/v projections always have biases (Qwen2). */
  qkvBias: boolean;
  /** The config has `attention_bias`, which would bias q/k/v and o_proj (Llama, Qwen3). */
  hasAttentionBiasKey: boolean;
  /** The config has `mlp_bias` (Llama). */
  hasMlpBiasKey: boolean;
  /** Per-head RMSNorm of q and k (Qwen3). */
  qkNorm: boolean;
  /**
   * none: no sliding window. all-layers: `sliding_window` (default 4096, null = off) applies to every
   * layer (Mistral). qwen: only with `use_sliding_window`, on the layers `layer_types` (or
   * `max_window_layers`) marks as sliding (Qwen2, Qwen3).
   */
  slidingWindow: "none" | "all-layers" | "qwen";
}

/**
 * Normalises a Llama-family config.json.
 *
 * @throws {ModelConfigError} naming the file and key for a missing or mistyped key, or a feature
 *   hearth does not implement (o_proj or MLP biases, a non-SiLU activation, per-layer sliding windows,
 *   unsupported RoPE scaling).
 */
export function normaliseLlamaFamily(c: ConfigReader, traits: FamilyTraits): ModelConfig {
  const size = (key: string, fallback?: number) => c.positiveInt(key, fallback, MAX_DIMENSION);
  const dim = size("hidden_size");
  const hiddenDim = size("intermediate_size");
  const nLayers = c.positiveInt("num_hidden_layers", undefined, MAX_LAYERS);
  const nHeads = size("num_attention_heads");
  const nKvHeads = size("num_key_value_heads", traits.numKeyValueHeads ?? nHeads);
  const vocabSize = size("vocab_size");
  const maxSeqLen = size("max_position_embeddings", traits.maxPositionEmbeddings);
  const normEps = c.positiveNumber("rms_norm_eps", 1e-6);
  const tiedEmbeddings = c.bool("tie_word_embeddings", false);

  let headDim: number;
  if (c.has("head_dim") || traits.headDim !== null) {
    headDim = size("head_dim", traits.headDim ?? undefined);
  } else {
    if (dim % nHeads !== 0) {
      throw c.error(
        "hidden_size",
        `(${dim}) is not a multiple of num_attention_heads (${nHeads}) and head_dim is not given`,
      );
    }
    headDim = dim / nHeads;
  }
  if (headDim % 2 !== 0) throw c.error("head_dim", `must be even for RoPE, got ${headDim}`);
  if (headDim > MAX_HEAD_DIM) {
    throw c.error("head_dim", `is ${headDim}; hearth's kernels take at most ${MAX_HEAD_DIM}`);
  }
  if (nHeads % nKvHeads !== 0) {
    throw c.error(
      "num_key_value_heads",
      `(${nKvHeads}) must divide num_attention_heads (${nHeads})`,
    );
  }

  const act = c.string("hidden_act", "silu");
  if (act !== "silu") throw c.error("hidden_act", `is "${act}"; hearth implements SwiGLU with "silu" only`);
  if (traits.hasAttentionBiasKey && c.bool("attention_bias", false)) {
    throw c.error(
      "attention_bias",
      "is true, which gives q/k/v and o_proj biases; hearth supports q/k/v biases but not an o_proj bias",
    );
  }
  if (traits.hasMlpBiasKey && c.bool("mlp_bias", false)) {
    throw c.error("mlp_bias", "is true; hearth does not support biases on the MLP projections");
  }

  const rope = readRopeParameters(c, maxSeqLen);
  return {
    architecture: traits.architecture,
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    maxSeqLen,
    slidingWindow: readSlidingWindow(c, traits, nLayers),
    normEps,
    attnScale: 1 / Math.sqrt(headDim),
    ropeInvFreq: ropeInvFreq(headDim, rope),
    ropeAttnFactor: rope.attentionFactor,
    ropeStyle: "half",
    qkvBias: traits.qkvBias,
    qkNorm: traits.qkNorm,
    tiedEmbeddings,
    bosTokenId: c.tokenId("bos_token_id", traits.bosTokenId),
    eosTokenIds: c.tokenIds("eos_token_id", traits.eosTokenId),
  };
}

/** The window (0 = none) every layer uses; a window on only some layers is refused. */
function readSlidingWindow(c: ConfigReader, traits: FamilyTraits, nLayers: number): number {
  if (traits.slidingWindow === "none") return 0;
  const window = c.optionalNonNegativeInt("sliding_window", 4096) ?? 0;
  if (traits.slidingWindow === "all-layers") return window;

  // Qwen: transformers sets sliding_window to None unless use_sliding_window, and then windows only
  // the layers whose layer_types entry is "sliding_attention" (by default those >= max_window_layers).
  if (!c.bool("use_sliding_window", false) || window === 0) return 0;
  let types = c.stringList("layer_types", null);
  if (types === null) {
    const maxWindowLayers = c.optionalNonNegativeInt("max_window_layers", 28) ?? 28;
    types = Array.from(
      { length: nLayers },
      (_, i) => i >= maxWindowLayers ? "sliding_attention" : "full_attention",
    );
  } else if (types.length !== nLayers) {
    throw c.error("layer_types", `has ${types.length} entries, but num_hidden_layers is ${nLayers}`);
  }
  const bad = types.find((t) => t !== "sliding_attention" && t !== "full_attention");
  if (bad !== undefined) {
    throw c.error("layer_types", `has "${bad}"; expected full_attention or sliding_attention`);
  }
  const sliding = types.filter((t) => t === "sliding_attention").length;
  if (sliding === 0) return 0;
  if (sliding === nLayers) return window;
  throw c.error(
    "use_sliding_window",
    `is true with a sliding window on ${sliding} of ${nLayers} layers (see layer_types / max_window_layers); ` +
      `hearth applies one window to all layers or none`,
  );
}
