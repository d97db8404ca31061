/**
 * Turns a GGUF file into the {@link ModelDescription} the native library loads, plus generation
 * defaults, the tokenizer and the chat template. Architectures: `llama` (which also covers Mistral
 * and SmolLM files: llama.cpp's converter writes them as `llama`), `qwen2` and `qwen3`.
 *
 * Conventions that differ from Hugging Face checkpoints:
 *
 * - Shapes. GGUF lists dimensions innermost first: a weight is [ne0 = in_features, ne1 =
 *   out_features]. TensorRef.shape is reversed to [out, in], the nn.Linear layout hearth uses
 *   everywhere; the bytes are the same row-major matrix either way.
 * - RoPE pairing. llama.cpp's converter permutes the rows of `attn_q`/`attn_k` (weights and biases)
 *   of `llama` models back to Meta's original layout, in which RoPE rotates adjacent pairs (2i,
 *   2i + 1): llama.cpp runs those models with its "normal" rope. `qwen2`/`qwen3` weights are stored
 *   unpermuted and rotated as Hugging Face does, pairs (i, i + d/2) ("neox" rope). So `llama` gets
 *   ropeStyle "interleaved", the others "half".
 * - RoPE scaling. Linear scaling is `{arch}.rope.scaling.type` = "linear" with `.factor` (older
 *   files: `{arch}.rope.scale_linear`). Llama 3 scaling is not a metadata value: the converter stores
 *   the per-frequency divisors as the F32 tensor `rope_freqs.weight`, which is read here and divided
 *   into the base inverse frequencies.
 *
 * @module
 */

import { resolve } from "node:path";
import {
  type GenerationDefaults,
  MAX_DIMENSION,
  MAX_HEAD_DIM,
  MAX_LAYERS,
  type ModelConfig,
  type ModelDescription,
  mostCommonDtype,
  type TensorRef,
  type TensorRoleName,
  type WeightDType,
} from "./description.ts";
import { ModelConfigError, ModelFormatError } from "./errors.ts";
import { type GgufHeader, type GgufTensorInfo, readGgufHeader, readGgufTensorBytes } from "./gguf.ts";
import { GgufFields } from "./gguf_fields.ts";
import { loadGgufTokenizer } from "./gguf_tokenizer.ts";
import { ropeInvFreq } from "./rope.ts";
import { expectedTensors } from "./tensor_map.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** GGUF `general.architecture` values hearth runs. */
export const SUPPORTED_GGUF_ARCHITECTURES = ["llama", "qwen2", "qwen3"] as const;

/** ggml type names hearth computes with, and the {@link WeightDType} each becomes. */
export const GGUF_WEIGHT_DTYPES: Readonly<Record<string, WeightDType>> = {
  F32: "f32",
  F16: "f16",
  BF16: "bf16",
  Q8_0: "q8_0",
  Q4_0: "q4_0",
  Q4_1: "q4_1",
  Q5_0: "q5_0",
  Q5_1: "q5_1",
  Q2_K: "q2_k",
  Q3_K: "q3_k",
  Q4_K: "q4_k",
  Q5_K: "q5_k",
  Q6_K: "q6_k",
};

/** GGUF tensor name of each role (`N` is the layer). */
const GGUF_NAMES: Record<TensorRoleName, string> = {
  tokenEmbd: "token_embd.weight",
  outputNorm: "output_norm.weight",
  lmHead: "output.weight",
  attnNorm: "blk.N.attn_norm.weight",
  wq: "blk.N.attn_q.weight",
  wk: "blk.N.attn_k.weight",
  wv: "blk.N.attn_v.weight",
  wo: "blk.N.attn_output.weight",
  bq: "blk.N.attn_q.bias",
  bk: "blk.N.attn_k.bias",
  bv: "blk.N.attn_v.bias",
  qNorm: "blk.N.attn_q_norm.weight",
  kNorm: "blk.N.attn_k_norm.weight",
  ffnNorm: "blk.N.ffn_norm.weight",
  wGate: "blk.N.ffn_gate.weight",
  wUp: "blk.N.ffn_up.weight",
  wDown: "blk.N.ffn_down.weight",
};

/** The GGUF name of the tensor with `role` in `layer` (-1 for whole-model tensors). */
export function ggufTensorName(role: TensorRoleName, layer: number): string {
  return GGUF_NAMES[role].replace("N", String(layer));
}

/** Tensors of layer 0 whose presence means a feature hearth does not implement. */
const UNSUPPORTED_TENSORS: [string, string][] = [
  ["blk.0.attn_output.bias", "an attention output (o_proj) bias"],
  ["blk.0.ffn_gate.bias", "MLP biases"],
  ["blk.0.ffn_up.bias", "MLP biases"],
  ["blk.0.ffn_down.bias", "MLP biases"],
  ["blk.0.attn_qkv.weight", "a fused q/k/v projection"],
  ["blk.0.ffn_gate_inp.weight", "mixture-of-experts layers"],
  ["blk.0.ffn_gate_exps.weight", "mixture-of-experts layers"],
];

/** Options of {@link describeGguf}. */
export interface DescribeGgufOptions {
  /** Also build the tokenizer (default true). */
  tokenizer?: boolean;
}

/** What {@link describeGguf} found. */
export interface DescribedGguf {
  description: ModelDescription;
  generation: GenerationDefaults;
  /** Null only with `tokenizer: false`. */
  tokenizer: Tokenizer | null;
  /** `tokenizer.chat_template`, or null. */
  chatTemplate: string | null;
  header: GgufHeader;
  /** Tensors in the file that hearth does not use, in file order (`rope_freqs.weight` is used). */
  ignoredTensors: string[];
}

/**
 * Describes the model in the GGUF file at `path`.
 *
 * @throws {ModelFormatError} for a malformed file, a missing tensor (named), one of the wrong shape
 *   (named, with the metadata values implying the expected one) or of a ggml type hearth does not
 *   compute with (named, with the type).
 * @throws {ModelConfigError} naming the file and key for missing or mistyped metadata, an unsupported
 *   architecture or RoPE scaling, or a tokenizer hearth cannot build.
 */
export async function describeGguf(path: string, options: DescribeGgufOptions = {}): Promise<DescribedGguf> {
  const abs = resolve(path);
  const header = await readGgufHeader(abs);
  const config = ggufModelConfig(header);
  const ropeFreqs = header.tensorsByName.get("rope_freqs.weight");
  if (ropeFreqs !== undefined) {
    config.ropeInvFreq = applyRopeFreqFactors(config, ropeFreqs, await ropeFactors(header, ropeFreqs));
  }
  const tensors = mapGgufTensors(header, config);
  const used = new Set(tensors.map((t) => t.name));
  if (ropeFreqs !== undefined) used.add(ropeFreqs.name);
  const loaded = options.tokenizer === false ? null : loadGgufTokenizer(header);
  if (loaded !== null && loaded.tokenizer.vocabSize > config.vocabSize) {
    throw new ModelConfigError(
      `${abs}: the tokenizer has ${loaded.tokenizer.vocabSize} tokens but the model's vocabulary ` +
        `(token_embd.weight) has ${config.vocabSize} rows`,
    );
  }
  return {
    description: { config, files: [abs], tensors, storedDtype: mostCommonDtype(tensors) },
    generation: ggufGenerationDefaults(header),
    tokenizer: loaded?.tokenizer ?? null,
    chatTemplate: loaded?.chatTemplate ?? null,
    header,
    ignoredTensors: header.tensors.map((t) => t.name).filter((n) => !used.has(n)),
  };
}

/**
 * The normalised dimensions of a GGUF model. `ropeInvFreq` is before any `rope_freqs.weight`
 * factors (see {@link describeGguf}).
 *
 * @throws {ModelConfigError} as {@link describeGguf}.
 */
export function ggufModelConfig(header: GgufHeader): ModelConfig {
  const f = new GgufFields(header);
  const arch = f.string("general.architecture");
  if (!(SUPPORTED_GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw f.error(
      "general.architecture",
      `is ${JSON.stringify(arch)}; hearth runs GGUF architectures ${SUPPORTED_GGUF_ARCHITECTURES.join(", ")}`,
    );
  }
  const k = (key: string) => `${arch}.${key}`;
  for (const key of ["feed_forward_length", "attention.head_count", "attention.head_count_kv"]) {
    if (f.header.metadataTypes.get(k(key))?.type === 9) {
      throw f.error(k(key), "varies per layer, which hearth does not support");
    }
  }
  if (f.has(k("expert_count")) && f.uint(k("expert_count")) > 0) {
    throw f.error(k("expert_count"), "is set: mixture-of-experts models are not supported");
  }
  for (const [name, what] of UNSUPPORTED_TENSORS) {
    if (header.tensorsByName.has(name)) {
      throw new ModelFormatError(
        `${header.path}: tensor ${name} means ${what}, which hearth does not support`,
      );
    }
  }

  const size = (key: string, fallback?: number) => f.positiveInt(k(key), fallback, MAX_DIMENSION);
  const dim = size("embedding_length");
  const nLayers = f.positiveInt(k("block_count"), undefined, MAX_LAYERS);
  const hiddenDim = size("feed_forward_length");
  const nHeads = size("attention.head_count");
  const nKvHeads = size("attention.head_count_kv", nHeads);
  if (nHeads % nKvHeads !== 0) {
    throw f.error(k("attention.head_count_kv"), `(${nKvHeads}) must divide attention.head_count (${nHeads})`);
  }
  let headDim: number;
  if (f.has(k("attention.key_length"))) {
    headDim = size("attention.key_length");
  } else {
    if (dim % nHeads !== 0) {
      throw f.error(
        k("embedding_length"),
        `(${dim}) is not a multiple of attention.head_count (${nHeads}) and attention.key_length is absent`,
      );
    }
    headDim = dim / nHeads;
  }
  if (f.has(k("attention.value_length")) && f.positiveInt(k("attention.value_length")) !== headDim) {
    throw f.error(
      k("attention.value_length"),
      `differs from the key length ${headDim}; hearth needs them equal`,
    );
  }
  if (headDim % 2 !== 0) throw f.error(k("attention.key_length"), `must be even for RoPE, got ${headDim}`);
  if (headDim > MAX_HEAD_DIM) {
    throw f.error(k("attention.key_length"), `is ${headDim}; hearth's kernels take at most ${MAX_HEAD_DIM}`);
  }
  if (f.has(k("rope.dimension_count")) && f.positiveInt(k("rope.dimension_count")) !== headDim) {
    throw f.error(
      k("rope.dimension_count"),
      `is ${
        f.uint(k("rope.dimension_count"))
      } but the head dimension is ${headDim}; hearth rotates whole heads only`,
    );
  }
  const normEps = f.positiveNumber(k("attention.layer_norm_rms_epsilon"));
  const maxSeqLen = size("context_length");
  const theta = f.positiveNumber(k("rope.freq_base"), 10000);

  const embd = header.tensorsByName.get("token_embd.weight");
  if (embd === undefined) throw new ModelFormatError(`${header.path}: tensor token_embd.weight is missing`);
  const vocabSize = f.has(k("vocab_size")) ? size("vocab_size") : embd.dims[embd.dims.length - 1];

  const qkvBias = arch === "qwen2" || header.tensorsByName.has("blk.0.attn_q.bias");
  const eos = f.tokenId("tokenizer.ggml.eos_token_id");
  return {
    architecture: arch,
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    maxSeqLen,
    slidingWindow: 0,
    normEps,
    attnScale: f.has(k("attention.scale")) ? f.positiveNumber(k("attention.scale")) : 1 / Math.sqrt(headDim),
    ropeInvFreq: ropeInvFreq(headDim, { theta, scaling: readRopeScaling(f, arch), attentionFactor: 1 }),
    ropeAttnFactor: 1,
    ropeStyle: arch === "llama" ? "interleaved" : "half",
    qkvBias,
    qkNorm: arch === "qwen3",
    tiedEmbeddings: !header.tensorsByName.has("output.weight"),
    bosTokenId: f.tokenId("tokenizer.ggml.bos_token_id"),
    eosTokenIds: eos === null ? [] : [eos],
  };
}

function readRopeScaling(f: GgufFields, arch: string) {
  const typeKey = `${arch}.rope.scaling.type`;
  const type = f.string(typeKey, "none");
  if (type === "none") {
    const legacy = `${arch}.rope.scale_linear`;
    if (f.has(legacy) && f.positiveNumber(legacy) !== 1) {
      return { type: "linear" as const, factor: f.positiveNumber(legacy) };
    }
    return { type: "default" as const };
  }
  if (type === "linear") {
    return { type: "linear" as const, factor: f.positiveNumber(`${arch}.rope.scaling.factor`) };
  }
  throw f.error(
    typeKey,
    `is ${JSON.stringify(type)}; hearth supports none and linear (and llama3 via rope_freqs)`,
  );
}

async function ropeFactors(header: GgufHeader, t: GgufTensorInfo): Promise<Float32Array> {
  if (t.typeName !== "F32") {
    throw new ModelFormatError(`${header.path}: tensor rope_freqs.weight is ${t.typeName}, expected F32`);
  }
  const bytes = await readGgufTensorBytes(header, t);
  return new Float32Array(bytes.buffer, bytes.byteOffset, t.nElements);
}

/**
 * Divides the base inverse frequencies by the per-frequency factors of `rope_freqs.weight` (how GGUF
 * stores Llama 3 RoPE scaling), in float32.
 *
 * @throws {ModelFormatError} when the tensor does not have head_dim / 2 positive entries.
 */
export function applyRopeFreqFactors(
  config: ModelConfig,
  tensor: GgufTensorInfo,
  factors: Float32Array,
): Float32Array {
  const half = config.headDim / 2;
  if (tensor.dims.length !== 1 || factors.length !== half) {
    throw new ModelFormatError(
      `tensor rope_freqs.weight has dims [${tensor.dims.join(", ")}], expected [${half}] (head_dim / 2)`,
    );
  }
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    if (!(factors[i] > 0) || !Number.isFinite(factors[i])) {
      throw new ModelFormatError(
        `tensor rope_freqs.weight has factor ${factors[i]} at ${i}; expected positive`,
      );
    }
    out[i] = Math.fround(config.ropeInvFreq[i] / factors[i]);
  }
  return out;
}

/**
 * Finds, shape-checks and types each tensor `config` requires, under its GGUF name.
 *
 * @throws {ModelFormatError} as {@link describeGguf}.
 */
export function mapGgufTensors(header: GgufHeader, config: ModelConfig): TensorRef[] {
  const refs: TensorRef[] = [];
  const missing: string[] = [];
  for (const want of expectedTensors(config)) {
    const name = ggufTensorName(want.role, want.layer);
    const t = header.tensorsByName.get(name);
    if (t === undefined) {
      missing.push(name);
      continue;
    }
    const shape = [...t.dims].reverse();
    if (shape.length !== want.shape.length || shape.some((d, i) => d !== want.shape[i])) {
      throw new ModelFormatError(
        `${header.path}: tensor ${name} has GGUF dims [${t.dims.join(", ")}] (shape [${shape.join(", ")}] ` +
          `as [out, in]), expected shape [${want.shape.join(", ")}] for ${
            ggufDims(config.architecture, want.dims)
          }`,
      );
    }
    const dtype = GGUF_WEIGHT_DTYPES[t.typeName];
    if (dtype === undefined) {
      throw new ModelFormatError(
        `${header.path}: tensor ${name} is stored as ${t.typeName} (ggml type ${t.type}), which hearth does ` +
          `not compute with; supported: ${Object.keys(GGUF_WEIGHT_DTYPES).join(", ")}`,
      );
    }
    refs.push({
      name,
      role: want.role,
      layer: want.layer,
      file: 0,
      offset: t.offset,
      nbytes: t.nbytes,
      dtype,
      shape,
    });
  }
  if (missing.length > 0) {
    const listed = missing.slice(0, 8).join(", ") +
      (missing.length > 8 ? `, and ${missing.length - 8} more` : "");
    let hint = "";
    if (missing.every((n) => /attn_[qkv]\.bias$/.test(n))) hint = `; ${config.architecture} has q/k/v biases`;
    if (missing.every((n) => /attn_[qk]_norm\.weight$/.test(n))) {
      hint = `; ${config.architecture} has q/k norms`;
    }
    throw new ModelFormatError(
      `${header.path}: ${missing.length === 1 ? "tensor is" : `${missing.length} tensors are`} missing ` +
        `for ${config.architecture}: ${listed}${hint}`,
    );
  }
  return refs;
}

/** Rewrites tensor_map's config.json key names in a shape explanation to the GGUF metadata keys. */
function ggufDims(arch: string, dims: string): string {
  return dims
    .replace("vocab_size", "vocabulary size")
    .replace("num_attention_heads", `${arch}.attention.head_count`)
    .replace("num_key_value_heads", `${arch}.attention.head_count_kv`)
    .replace("head_dim", "head dim")
    .replace("hidden_size", `${arch}.embedding_length`)
    .replace("intermediate_size", `${arch}.feed_forward_length`);
}

/** Generation defaults a GGUF carries: special token ids (EOT/EOM count as stops) and sampling keys. */
export function ggufGenerationDefaults(header: GgufHeader): GenerationDefaults {
  const f = new GgufFields(header);
  const out: GenerationDefaults = {};
  const eos = ["eos", "eot", "eom"].map((k) => f.tokenId(`tokenizer.ggml.${k}_token_id`)).filter((v) =>
    v !== null
  ) as number[];
  if (eos.length > 0) out.eosTokenIds = [...new Set(eos)];
  const bos = f.tokenId("tokenizer.ggml.bos_token_id");
  if (bos !== null) out.bosTokenId = bos;
  const pad = f.tokenId("tokenizer.ggml.padding_token_id");
  if (pad !== null) out.padTokenId = pad;
  // Sampling defaults some converters write (general.sampling.*).
  if (f.has("general.sampling.temp")) out.temperature = f.number("general.sampling.temp");
  if (f.has("general.sampling.top_p")) out.topP = f.number("general.sampling.top_p");
  if (f.has("general.sampling.top_k")) out.topK = f.uint("general.sampling.top_k");
  if (f.has("general.sampling.min_p")) out.minP = f.number("general.sampling.min_p");
  if (f.has("general.sampling.penalty_repeat")) {
    out.repetitionPenalty = f.number("general.sampling.penalty_repeat");
  }
  return out;
}
