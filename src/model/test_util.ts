/**
 * Test support for src/model: builds small Hugging Face style model directories (config.json plus
 * safetensors weights) and raw, deliberately broken safetensors files. Not a test itself.
 *
 * @module
 */

import { join } from "node:path";
import { SAFETENSORS_DTYPE_BYTES, type TensorToWrite, writeSafetensors } from "./safetensors_write.ts";

/** Writes a safetensors-like file from a raw header (object or exact string) and `dataBytes` zero bytes. */
export async function writeRawSafetensors(
  path: string,
  header: Record<string, unknown> | string,
  dataBytes: number,
  declaredHeaderLength?: bigint,
): Promise<void> {
  const body = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const bytes = new Uint8Array(8 + body.length + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, declaredHeaderLength ?? BigInt(body.length), true);
  bytes.set(body, 8);
  await Deno.writeFile(path, bytes);
}

/** Options of {@link writeTinyModel}. */
export interface TinyModelOptions {
  /** config.json `architectures[0]`; default LlamaForCausalLM. */
  architecture?: string;
  /** Merged over the default config.json (a value of undefined removes the key). */
  config?: Record<string, unknown>;
  /** safetensors dtype of every weight; default F32. */
  dtype?: string;
  /** Tensor names to leave out. */
  omit?: string[];
  /** Per-tensor replacements of dtype and/or shape. */
  override?: Record<string, { dtype?: string; shape?: number[] }>;
  /** Extra tensors to add (e.g. rotary inv_freq buffers). */
  extra?: Record<string, { dtype: string; shape: number[] }>;
  /** Split the weights over this many shards with a model.safetensors.index.json; default 1. */
  shards?: number;
}

/** The config.json of a tiny model of `architecture` (hidden 64, 2 layers, 4 heads, 2 KV heads). */
export function tinyConfig(architecture = "LlamaForCausalLM"): Record<string, unknown> {
  return {
    architectures: [architecture],
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 96,
    max_position_embeddings: 256,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
  };
}

/**
 * The tensors Hugging Face saves for a Llama-family config, written out independently of the loader's
 * own table so that loader tests check one against the other.
 */
export function hfTensorShapes(architecture: string, c: Record<string, unknown>): Map<string, number[]> {
  const dim = c.hidden_size as number;
  const hidden = c.intermediate_size as number;
  const heads = c.num_attention_heads as number;
  const kv = (c.num_key_value_heads as number | undefined) ?? heads;
  const headDim = (c.head_dim as number | undefined) ??
    (architecture === "Qwen3ForCausalLM" ? 128 : dim / heads);
  const vocab = c.vocab_size as number;
  const out = new Map<string, number[]>();
  out.set("model.embed_tokens.weight", [vocab, dim]);
  for (let i = 0; i < (c.num_hidden_layers as number); i++) {
    const p = `model.layers.${i}.`;
    out.set(p + "input_layernorm.weight", [dim]);
    out.set(p + "self_attn.q_proj.weight", [heads * headDim, dim]);
    out.set(p + "self_attn.k_proj.weight", [kv * headDim, dim]);
    out.set(p + "self_attn.v_proj.weight", [kv * headDim, dim]);
    out.set(p + "self_attn.o_proj.weight", [dim, heads * headDim]);
    if (architecture === "Qwen2ForCausalLM") {
      out.set(p + "self_attn.q_proj.bias", [heads * headDim]);
      out.set(p + "self_attn.k_proj.bias", [kv * headDim]);
      out.set(p + "self_attn.v_proj.bias", [kv * headDim]);
    }
    if (architecture === "Qwen3ForCausalLM") {
      out.set(p + "self_attn.q_norm.weight", [headDim]);
      out.set(p + "self_attn.k_norm.weight", [headDim]);
    }
    out.set(p + "post_attention_layernorm.weight", [dim]);
    out.set(p + "mlp.gate_proj.weight", [hidden, dim]);
    out.set(p + "mlp.up_proj.weight", [hidden, dim]);
    out.set(p + "mlp.down_proj.weight", [dim, hidden]);
  }
  out.set("model.norm.weight", [dim]);
  if (!c.tie_word_embeddings) out.set("lm_head.weight", [vocab, dim]);
  return out;
}

/**
 * Writes config.json and weights of a tiny model into `dir`. Data bytes are a repeating counter so
 * that offsets mixed up between tensors would read different bytes.
 *
 * @returns the config.json written and the tensors (name → dtype, shape) in file order.
 */
export async function writeTinyModel(
  dir: string,
  options: TinyModelOptions = {},
): Promise<{ config: Record<string, unknown>; tensors: Map<string, { dtype: string; shape: number[] }> }> {
  const architecture = options.architecture ?? "LlamaForCausalLM";
  const config: Record<string, unknown> = { ...tinyConfig(architecture), ...options.config };
  for (const [k, v] of Object.entries(config)) if (v === undefined) delete config[k];
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config, null, 2));

  const tensors = new Map<string, { dtype: string; shape: number[] }>();
  for (const [name, shape] of hfTensorShapes(architecture, config)) {
    if (options.omit?.includes(name)) continue;
    const o = options.override?.[name];
    tensors.set(name, { dtype: o?.dtype ?? options.dtype ?? "F32", shape: o?.shape ?? shape });
  }
  for (const [name, t] of Object.entries(options.extra ?? {})) tensors.set(name, t);

  const withData = (t: { dtype: string; shape: number[] }): TensorToWrite => {
    const n = t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype.toUpperCase()];
    return { ...t, data: Uint8Array.from({ length: n }, (_, i) => i & 0xff) };
  };
  const shards = options.shards ?? 1;
  if (shards === 1) {
    const all = new Map([...tensors].map(([n, t]) => [n, withData(t)]));
    await writeSafetensors(join(dir, "model.safetensors"), all, { metadata: { format: "pt" } });
    return { config, tensors };
  }
  const names = [...tensors.keys()];
  const perShard = Math.ceil(names.length / shards);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
    const part = new Map<string, TensorToWrite>();
    for (const name of names.slice(s * perShard, (s + 1) * perShard)) {
      part.set(name, withData(tensors.get(name)!));
      weightMap[name] = file;
    }
    await writeSafetensors(join(dir, file), part, { metadata: { format: "pt" } });
  }
  await Deno.writeTextFile(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }, null, 2),
  );
  return { config, tensors };
}
