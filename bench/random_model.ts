/**
 * Random-weight checkpoints of a real model's shape, written in the Hugging Face layout, for
 * benchmarks: the speed of a forward pass depends on shapes and dtypes, not on what the weights say.
 * Cached under $HEARTH_CACHE (default ~/.cache/hearth) so a benchmark run writes each only once.
 *
 * @module
 */
import { type TensorToWrite, writeSafetensors } from "../src/model/safetensors_write.ts";
import type { DType } from "../src/model/description.ts";

/** The dimensions of a Llama-family model, in config.json names. */
export interface ModelShape {
  name: string;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  intermediate_size: number;
  vocab_size: number;
  max_position_embeddings: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
}

/** SmolLM2-135M: hidden 576, 30 layers, 9 heads, 3 KV heads, FFN 1536, vocab 49152. */
export const SMOLLM2_135M: ModelShape = {
  name: "smollm2-135m",
  hidden_size: 576,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  intermediate_size: 1536,
  vocab_size: 49152,
  max_position_embeddings: 8192,
  rope_theta: 100000,
  tie_word_embeddings: true,
};

/** Llama-3.2-1B: hidden 2048, 16 layers, 32 heads, 8 KV heads, FFN 8192, vocab 128256. */
export const LLAMA32_1B: ModelShape = {
  name: "llama-3.2-1b",
  hidden_size: 2048,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  intermediate_size: 8192,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  rope_theta: 500000,
  tie_word_embeddings: true,
};

/** The default cache directory for fetched and generated models. */
export function cacheDir(): string {
  return Deno.env.get("HEARTH_CACHE") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache/hearth`;
}

/** xorshift32 → small uniform values; fast enough to fill hundreds of MB. */
function fillRandom(out: Float32Array, scale: number, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
}

function encode(values: Float32Array, dtype: DType): ArrayBufferView {
  if (dtype === "f32") return values;
  const out = new Uint16Array(values.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  if (dtype === "bf16") {
    for (let i = 0; i < values.length; i++) {
      const b = bits[i];
      out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  } else {
    // f16 of small uniform values (|x| < 1): no overflow; flush below 2^-14 to zero is harmless here.
    for (let i = 0; i < values.length; i++) {
      const b = bits[i];
      const sign = (b >>> 16) & 0x8000;
      const exp = ((b >>> 23) & 0xff) - 127 + 15;
      if (exp <= 0) out[i] = sign;
      else out[i] = sign | (exp << 10) | ((b >>> 13) & 0x3ff);
    }
  }
  return out;
}

/**
 * Writes (once) a random-weight checkpoint of `shape` stored in `dtype` and returns its directory.
 * Weights are uniform in ±0.5/sqrt(fan_in) so activations stay in a realistic range; norms are 1.
 */
export async function ensureRandomModel(shape: ModelShape, dtype: DType): Promise<string> {
  const dir = `${cacheDir()}/bench/${shape.name}-${dtype}`;
  const marker = `${dir}/.complete`;
  try {
    await Deno.stat(marker);
    return dir;
  } catch { /* write it */ }
  await Deno.mkdir(dir, { recursive: true });
  const hd = shape.hidden_size / shape.num_attention_heads;
  const D = shape.hidden_size, F = shape.intermediate_size, V = shape.vocab_size;
  const q = shape.num_attention_heads * hd, kv = shape.num_key_value_heads * hd;
  const tensors = new Map<string, TensorToWrite>();
  let seed = 1;
  const mat = (name: string, rows: number, cols: number) => {
    const v = new Float32Array(rows * cols);
    fillRandom(v, 0.5 / Math.sqrt(cols), seed++);
    tensors.set(name, { dtype, shape: [rows, cols], data: encode(v, dtype) });
  };
  const ones = (name: string, n: number) => {
    tensors.set(name, { dtype, shape: [n], data: encode(new Float32Array(n).fill(1), dtype) });
  };
  mat("model.embed_tokens.weight", V, D);
  for (let l = 0; l < shape.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    ones(`${p}.input_layernorm.weight`, D);
    mat(`${p}.self_attn.q_proj.weight`, q, D);
    mat(`${p}.self_attn.k_proj.weight`, kv, D);
    mat(`${p}.self_attn.v_proj.weight`, kv, D);
    mat(`${p}.self_attn.o_proj.weight`, D, q);
    ones(`${p}.post_attention_layernorm.weight`, D);
    mat(`${p}.mlp.gate_proj.weight`, F, D);
    mat(`${p}.mlp.up_proj.weight`, F, D);
    mat(`${p}.mlp.down_proj.weight`, D, F);
  }
  ones("model.norm.weight", D);
  if (!shape.tie_word_embeddings) mat("lm_head.weight", V, D);
  await writeSafetensors(`${dir}/model.safetensors`, tensors);
  const { name: _name, ...dims } = shape;
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...dims,
    head_dim: hd,
    rms_norm_eps: 1e-5,
    hidden_act: "silu",
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: { f32: "float32", f16: "float16", bf16: "bfloat16" }[dtype],
  };
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config, null, 2));
  await Deno.writeTextFile(marker, new Date().toISOString());
  return dir;
}
