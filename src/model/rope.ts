/**
 * RoPE inverse frequencies from a Hugging Face config: the base `1 / theta^(2i/d)`, optionally scaled
 * ("linear", "llama3"). Parameters are read from `rope_scaling` (transformers 4) or `rope_parameters`
 * (transformers 5, which also moves `rope_theta` inside it).
 *
 * The arithmetic follows transformers' float32 tensor code step by step (Math.fround after each op)
 * so the frequencies match its `inv_freq` buffer bit for bit, except that torch's vectorised powf
 * (SLEEF, 1-ULP accurate) rounds ~1% of base frequencies one or two ULPs differently from the
 * correctly rounded pow used here.
 *
 * @module
 */

import type { ConfigReader } from "./config_fields.ts";

/** rope_type values hearth implements. */
export const SUPPORTED_ROPE_TYPES = ["default", "linear", "llama3"] as const;

/** How the base frequencies are rescaled. */
export type RopeScaling =
  | { type: "default" }
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };

/** Everything needed to compute the inverse frequencies. */
export interface RopeParameters {
  theta: number;
  scaling: RopeScaling;
  /** Multiplier of cos/sin; 1 for every supported type. */
  attentionFactor: number;
}

/** transformers' default `rope_theta`. */
export const DEFAULT_ROPE_THETA = 10000;

/**
 * Reads the RoPE parameters of a config. `rope_scaling` wins over `rope_parameters` (as in
 * transformers' conversion); `rope_theta` is taken from that object, else the top level, else 10000.
 *
 * @throws {ModelConfigError} naming the key for an unsupported rope_type (listing the supported
 *   ones), a partial rotary factor, per-layer RoPE, or a missing / bad scaling parameter.
 */
export function readRopeParameters(config: ConfigReader, maxPositionEmbeddings: number): RopeParameters {
  const key = config.has("rope_scaling") ? "rope_scaling" : "rope_parameters";
  const rope = config.object(key);
  const theta = rope?.has("rope_theta")
    ? rope.positiveNumber("rope_theta")
    : config.positiveNumber("rope_theta", DEFAULT_ROPE_THETA);

  for (const source of [config, rope]) {
    if (source?.has("partial_rotary_factor") && source.number("partial_rotary_factor") !== 1) {
      throw source.error(
        "partial_rotary_factor",
        `is ${source.raw("partial_rotary_factor")}; hearth rotates the whole head (factor 1) only`,
      );
    }
  }
  if (rope === null) return { theta, scaling: { type: "default" }, attentionFactor: 1 };
  for (const layerType of ["full_attention", "sliding_attention"]) {
    if (rope.has(layerType)) {
      throw config.error(
        key,
        `gives RoPE parameters per layer type (${layerType}), which hearth does not support`,
      );
    }
  }

  const typeKey = rope.has("rope_type") ? "rope_type" : "type";
  const type = rope.string(typeKey, "default");
  switch (type) {
    case "default":
      return { theta, scaling: { type: "default" }, attentionFactor: 1 };
    case "linear":
      return {
        theta,
        scaling: { type: "linear", factor: rope.positiveNumber("factor") },
        attentionFactor: 1,
      };
    case "llama3": {
      const lowFreqFactor = rope.positiveNumber("low_freq_factor");
      const highFreqFactor = rope.positiveNumber("high_freq_factor");
      if (highFreqFactor <= lowFreqFactor) {
        throw rope.error(
          "high_freq_factor",
          `(${highFreqFactor}) must be greater than low_freq_factor (${lowFreqFactor})`,
        );
      }
      // transformers lets a top-level original_max_position_embeddings win (Phi-3 style configs).
      const original = config.has("original_max_position_embeddings")
        ? config.positiveInt("original_max_position_embeddings")
        : rope.positiveInt("original_max_position_embeddings", maxPositionEmbeddings);
      return {
        theta,
        scaling: {
          type: "llama3",
          factor: rope.positiveNumber("factor"),
          lowFreqFactor,
          highFreqFactor,
          originalMaxPositionEmbeddings: original,
        },
        attentionFactor: 1,
      };
    }
    default:
      throw rope.error(
        typeKey,
        `is ${JSON.stringify(type)}, which hearth does not support; supported rope types: ` +
          SUPPORTED_ROPE_TYPES.join(", "),
      );
  }
}

/** The (headDim / 2) inverse frequencies for `params`, in float32 as transformers computes them. */
export function ropeInvFreq(headDim: number, params: RopeParameters): Float32Array {
  const f = Math.fround;
  const half = headDim / 2;
  if (!Number.isInteger(half) || half <= 0) throw new Error(`ropeInvFreq: head_dim ${headDim} must be even`);
  // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all float32 (base cast to float32).
  const theta = f(params.theta);
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(theta, f((2 * i) / headDim))));

  const s = params.scaling;
  if (s.type === "linear") {
    const factor = f(s.factor);
    for (let i = 0; i < half; i++) inv[i] = f(inv[i] / factor);
  } else if (s.type === "llama3") {
    // transformers' _compute_llama3_parameters: keep high frequencies, divide low ones by factor,
    // and blend in between by how many rotations fit in the original context.
    const factor = f(s.factor);
    const low = f(s.lowFreqFactor);
    const old = s.originalMaxPositionEmbeddings;
    const lowFreqWavelen = f(old / s.lowFreqFactor);
    const highFreqWavelen = f(old / s.highFreqFactor);
    const twoPi = f(2 * Math.PI);
    const span = f(s.highFreqFactor - s.lowFreqFactor);
    for (let i = 0; i < half; i++) {
      const x = inv[i];
      // Python scalar / tensor is tensor.reciprocal() * scalar in torch.
      const wavelen = f(f(1 / x) * twoPi);
      const scaled = wavelen > lowFreqWavelen ? f(x / factor) : x;
      const smooth = f(f(f(f(1 / wavelen) * f(old)) - low) / span);
      const smoothed = f(f(f(f(1 - smooth) * scaled) / factor) + f(smooth * scaled));
      const medium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
      inv[i] = medium ? smoothed : scaled;
    }
  }
  return inv;
}
