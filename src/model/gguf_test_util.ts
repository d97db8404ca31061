/**
 * Test support for the GGUF readers: temp files, the tiny byte-level tokenizer as GGUF metadata, and
 * tiny random GGUF models of each architecture. Not a test itself.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelConfigError, ModelFormatError } from "./errors.ts";
import {
  type GgufTensorToWrite,
  type GgufToWrite,
  type GgufTypedValue,
  gv,
  RANDOM_TENSOR_TYPES,
  randomTensorData,
  writeGguf,
} from "./gguf_write.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SMOLLM2_GGUF = join(
  Deno.env.get("HEARTH_CACHE") ?? join(Deno.env.get("HOME") ?? "/nonexistent", ".cache/hearth"),
  "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
);

/** Whether the SmolLM2 GGUF (scripts/fetch_smollm2.sh) is in the cache. */
export function haveSmollm2(): boolean {
  try {
    return Deno.statSync(SMOLLM2_GGUF).isFile;
  } catch {
    return false;
  }
}

/** Writes `spec` as `name` in a fresh temp dir and returns the path. */
export async function tempGguf(spec: GgufToWrite, name = "model.gguf"): Promise<string> {
  const path = join(await Deno.makeTempDir({ prefix: "hearth-gguf-" }), name);
  await writeGguf(path, spec);
  return path;
}

/** Asserts `promise` rejects with an error of `cls` whose message contains every part. */
export async function rejectsWith(
  promise: Promise<unknown> | (() => unknown),
  cls: typeof ModelFormatError | typeof ModelConfigError,
  ...parts: string[]
): Promise<string> {
  let message = "";
  await assert.rejects(
    typeof promise === "function" ? (async () => await promise())() : promise,
    (e: unknown) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
      message = e.message;
      for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
      return true;
    },
  );
  return message;
}

interface HfTokenizerJson {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: { vocab: Record<string, number>; merges: ([string, string] | string)[] };
}

/**
 * The `tokenizer.ggml.*` metadata of a Hugging Face byte-level BPE tokenizer.json, as llama.cpp's
 * converter writes it: tokens by id, merges as "a b", type 3 for special added tokens.
 */
export function byteLevelTokenizerMetadata(
  json: HfTokenizerJson,
  config: Record<string, unknown>,
  pre: string,
): [string, GgufTypedValue][] {
  const n = Math.max(...Object.values(json.model.vocab), ...json.added_tokens.map((t) => t.id)) + 1;
  const tokens = new Array<string>(n);
  const types = new Int32Array(n).fill(1);
  for (const [t, id] of Object.entries(json.model.vocab)) tokens[id] = t;
  for (const t of json.added_tokens) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? 3 : 4;
  }
  const id = (key: string) => tokens.indexOf(config[key] as string);
  const out: [string, GgufTypedValue][] = [
    ["tokenizer.ggml.model", gv.str("gpt2")],
    ["tokenizer.ggml.pre", gv.str(pre)],
    ["tokenizer.ggml.tokens", gv.array("string", tokens)],
    ["tokenizer.ggml.token_type", gv.array("i32", types)],
    [
      "tokenizer.ggml.merges",
      gv.array("string", json.model.merges.map((m) => Array.isArray(m) ? m.join(" ") : m)),
    ],
    ["tokenizer.ggml.add_bos_token", gv.bool(config.add_bos_token === true)],
  ];
  for (const [key, name] of [["bos_token", "bos"], ["eos_token", "eos"], ["pad_token", "padding"]]) {
    if (typeof config[key] === "string") out.push([`tokenizer.ggml.${name}_token_id`, gv.u32(id(key))]);
  }
  if (typeof config.chat_template === "string") {
    out.push(["tokenizer.chat_template", gv.str(config.chat_template)]);
  }
  return out;
}

/** The tiny tokenizer of test/fixtures/tokenizer/tiny as GGUF metadata (vocabulary 512). */
export async function tinyTokenizerMetadata(): Promise<[string, GgufTypedValue][]> {
  const dir = join(ROOT, "test/fixtures/tokenizer/tiny");
  const json = JSON.parse(await Deno.readTextFile(join(dir, "tokenizer.json")));
  const config = JSON.parse(await Deno.readTextFile(join(dir, "tokenizer_config.json")));
  return byteLevelTokenizerMetadata(json, config, "gpt2");
}

/** Whether {@link randomTensorData} makes data of `type` (others are left as zeros). */
function randomizable(type: string | number): boolean {
  return typeof type === "string" && RANDOM_TENSOR_TYPES.includes(type.toUpperCase());
}

/** Options of {@link tinyGgufModel}. */
export interface TinyGgufOptions {
  arch?: "llama" | "qwen2" | "qwen3";
  dim?: number;
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  /** Written as attention.key_length when given. */
  headDim?: number;
  /** Default false (an output.weight is written). */
  tied?: boolean;
  /** ggml type of the 2-D weights (default F16); norms and biases are F32. */
  weightType?: string;
  /** ggml type of token_embd.weight (default Q8_0). */
  embdType?: string;
  /** Metadata entries to add or replace (undefined removes). */
  metadata?: Record<string, GgufTypedValue | undefined>;
  /** Tensor names to leave out. */
  omit?: string[];
  /** Replacement dims (GGUF order) / type per tensor name. */
  override?: Record<string, { dims?: number[]; type?: string | number }>;
  /** Extra tensors: name → [dims, type] (random data). */
  extra?: Record<string, { dims: number[]; type: string; data?: Uint8Array }>;
  /** Leave out the tokenizer metadata. */
  noTokenizer?: boolean;
}

/**
 * Writes a tiny random GGUF model (vocabulary 512 from the tiny tokenizer, hidden 64, 2 layers, 4
 * heads, 2 kv heads, FFN 128, by default) and returns its path. Tensor dims are GGUF order:
 * [in_features, out_features].
 */
export async function tinyGgufModel(o: TinyGgufOptions = {}): Promise<string> {
  const arch = o.arch ?? "llama";
  const dim = o.dim ?? 64, hidden = o.hidden ?? 128, layers = o.layers ?? 2;
  const heads = o.heads ?? 4, kvHeads = o.kvHeads ?? 2, headDim = o.headDim ?? dim / heads;
  const vocab = 512;
  const wt = o.weightType ?? "F16";
  const q = heads * headDim, kv = kvHeads * headDim;
  const tensors: [string, number[], string][] = [["token_embd.weight", [dim, vocab], o.embdType ?? "Q8_0"]];
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    tensors.push([p + "attn_norm.weight", [dim], "F32"]);
    tensors.push([p + "attn_q.weight", [dim, q], wt]);
    tensors.push([p + "attn_k.weight", [dim, kv], wt]);
    tensors.push([p + "attn_v.weight", [dim, kv], wt]);
    tensors.push([p + "attn_output.weight", [q, dim], wt]);
    if (arch === "qwen2") {
      tensors.push([p + "attn_q.bias", [q], "F32"]);
      tensors.push([p + "attn_k.bias", [kv], "F32"]);
      tensors.push([p + "attn_v.bias", [kv], "F32"]);
    }
    if (arch === "qwen3") {
      tensors.push([p + "attn_q_norm.weight", [headDim], "F32"]);
      tensors.push([p + "attn_k_norm.weight", [headDim], "F32"]);
    }
    tensors.push([p + "ffn_norm.weight", [dim], "F32"]);
    tensors.push([p + "ffn_gate.weight", [dim, hidden], wt]);
    tensors.push([p + "ffn_up.weight", [dim, hidden], wt]);
    tensors.push([p + "ffn_down.weight", [hidden, dim], wt]);
  }
  tensors.push(["output_norm.weight", [dim], "F32"]);
  if (!o.tied) tensors.push(["output.weight", [dim, vocab], wt]);

  const meta = new Map<string, GgufTypedValue>([
    ["general.architecture", gv.str(arch)],
    ["general.name", gv.str(`tiny-${arch}`)],
    [`${arch}.context_length`, gv.u32(256)],
    [`${arch}.embedding_length`, gv.u32(dim)],
    [`${arch}.block_count`, gv.u32(layers)],
    [`${arch}.feed_forward_length`, gv.u32(hidden)],
    [`${arch}.attention.head_count`, gv.u32(heads)],
    [`${arch}.attention.head_count_kv`, gv.u32(kvHeads)],
    [`${arch}.rope.freq_base`, gv.f32(500000)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(1e-5)],
  ]);
  if (o.headDim !== undefined) meta.set(`${arch}.attention.key_length`, gv.u32(o.headDim));
  if (!o.noTokenizer) {
    for (const [k, v] of await tinyTokenizerMetadata()) meta.set(k, v);
  }
  for (const [k, v] of Object.entries(o.metadata ?? {})) {
    if (v === undefined) meta.delete(k);
    else meta.set(k, v);
  }

  const omit = new Set(o.omit ?? []);
  let seed = 1;
  const spec: GgufTensorToWrite[] = tensors.filter(([name]) => !omit.has(name)).map(([name, dims, type]) => {
    const ov = o.override?.[name];
    const d = ov?.dims ?? dims, t = ov?.type ?? type;
    return {
      name,
      dims: d,
      type: t,
      data: randomizable(t) ? randomTensorData(t, d, { seed: seed++ }) : undefined,
    };
  });
  for (const [name, t] of Object.entries(o.extra ?? {})) {
    spec.push({
      name,
      dims: t.dims,
      type: t.type,
      data: t.data ?? randomTensorData(t.type, t.dims, { seed: seed++ }),
    });
  }
  return await tempGguf({ metadata: meta, tensors: spec });
}
