/**
 * The model description TypeScript hands to the native library: normalised dimensions plus, for each
 * tensor, where its bytes are. Produced by the format readers (safetensors, later GGUF) and the
 * architecture registry; consumed by `src/native/` which passes it to `hearth_model_*`.
 *
 * @module
 */

/** Storage type of a tensor, numbered as `hearth_dtype` in kernels/include/hearth.h. */
export type DType = "f32" | "f16" | "bf16";

/** Block-quantized storage types (GGUF layouts, kernels/include/hearth_quant.h). */
export type QuantDType =
  | "q8_0"
  | "q4_0"
  | "q4_1"
  | "q5_0"
  | "q5_1"
  | "q2_k"
  | "q3_k"
  | "q4_k"
  | "q5_k"
  | "q6_k";

/** Any storage type of a weight. */
export type WeightDType = DType | QuantDType;

/** `hearth_dtype` numbers of every {@link WeightDType}. */
export const DTYPE_CODE: Record<WeightDType, number> = {
  f32: 0,
  f16: 1,
  bf16: 2,
  q8_0: 3,
  q4_0: 4,
  q4_1: 5,
  q5_0: 6,
  q5_1: 7,
  q2_k: 8,
  q3_k: 9,
  q4_k: 10,
  q5_k: 11,
  q6_k: 12,
};

/** Bytes per element of each {@link DType}. */
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };

/** What a tensor is for, numbered as `hearth_tensor_role` in kernels/include/hearth.h. */
export const TensorRole = {
  tokenEmbd: 0,
  outputNorm: 1,
  lmHead: 2,
  attnNorm: 3,
  wq: 4,
  wk: 5,
  wv: 6,
  wo: 7,
  bq: 8,
  bk: 9,
  bv: 10,
  qNorm: 11,
  kNorm: 12,
  ffnNorm: 13,
  wGate: 14,
  wUp: 15,
  wDown: 16,
} as const;

/** A tensor role name, e.g. `"wq"`. */
export type TensorRoleName = keyof typeof TensorRole;

/** RoPE pairing: `half` pairs (i, i + d/2) as Hugging Face does; `interleaved` pairs (2i, 2i + 1). */
export type RopeStyle = "half" | "interleaved";

/** Most layers a model may have (the native library's limit: hearth_check_model_config in model_desc.c). */
export const MAX_LAYERS = 4096;
/** Largest head dimension the kernels take (model_desc.c). */
export const MAX_HEAD_DIM = 1024;
/** Largest of the other dimensions: the native library takes them as 32-bit integers. */
export const MAX_DIMENSION = 2 ** 31 - 1;

/** Normalised dimensions and features of a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3). */
export interface ModelConfig {
  /** `architectures[0]` of config.json (or the GGUF architecture), for messages and /v1/models. */
  architecture: string;
  /** Hidden size. */
  dim: number;
  /** FFN intermediate size. */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  /** Longest context the model accepts (`max_position_embeddings`). */
  maxSeqLen: number;
  /** Attend to at most this many earlier positions; 0 = unlimited. */
  slidingWindow: number;
  normEps: number;
  /** Multiplier of q·k, usually 1/sqrt(headDim). */
  attnScale: number;
  /** RoPE inverse frequencies after any scaling (llama3, linear, ...): (headDim / 2). */
  ropeInvFreq: Float32Array;
  /** Multiplier applied to cos/sin (1 unless a YaRN-like scaling says otherwise). */
  ropeAttnFactor: number;
  ropeStyle: RopeStyle;
  /** Qwen2: q/k/v projections have biases. */
  qkvBias: boolean;
  /** Qwen3: per-head RMSNorm of q and k. */
  qkNorm: boolean;
  /** lm_head shares the token embedding. */
  tiedEmbeddings: boolean;
  /** Token ids from config.json (generation_config.json may add to eos). */
  bosTokenId: number | null;
  eosTokenIds: number[];
}

/** Where one tensor's bytes are. */
export interface TensorRef {
  /** Name in the file, for messages (e.g. `model.layers.0.self_attn.q_proj.weight`). */
  name: string;
  role: TensorRoleName;
  /** Layer index, or -1 for whole-model tensors. */
  layer: number;
  /** Index into {@link ModelDescription.files}. */
  file: number;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  nbytes: number;
  dtype: WeightDType;
  shape: number[];
}

/** Everything the native library needs to build a model. */
export interface ModelDescription {
  config: ModelConfig;
  /** Absolute paths of the files to map. */
  files: string[];
  tensors: TensorRef[];
  /** dtype most weights are stored in (for the `auto` choice and messages). */
  storedDtype: WeightDType;
}

/** The dtype holding the most parameters (ties go to the dtype seen first): a description's `storedDtype`. */
export function mostCommonDtype(tensors: TensorRef[]): WeightDType {
  const count = new Map<WeightDType, number>();
  for (const t of tensors) count.set(t.dtype, (count.get(t.dtype) ?? 0) + t.shape.reduce((a, b) => a * b, 1));
  let best: WeightDType = "f32";
  let bestCount = -1;
  for (const [dtype, n] of count) {
    if (n > bestCount) [best, bestCount] = [dtype, n];
  }
  return best;
}

/** Generation defaults from generation_config.json (all optional). */
export interface GenerationDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
  doSample?: boolean;
  eosTokenIds?: number[];
  bosTokenId?: number;
  padTokenId?: number;
}
