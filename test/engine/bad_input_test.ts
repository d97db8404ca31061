/**
 * Bad checkpoints through the engine's own entry point (`Engine.load`), on copies of a real
 * transformers fixture broken one way each: the error is a typed model error naming the file and the
 * tensor or key, the process goes on, and a good model loads and generates afterwards. The unit tests
 * beside the parsers (src/model/*_test.ts) cover more variants of each; these show that nothing of a
 * bad checkpoint reaches the native library or takes the process down.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../assert.ts";
import { Engine } from "../../src/engine/engine.ts";
import { ModelConfigError, ModelFormatError } from "../../src/model/errors.ts";
import { FIXTURES } from "./fixtures.ts";

const SOURCE = `${FIXTURES}/models/llama-f32`;

/** A fresh copy of the llama-f32 fixture directory. */
async function copyFixture(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hearth-bad-input-" });
  for await (const e of Deno.readDir(SOURCE)) {
    if (e.isFile) await Deno.copyFile(join(SOURCE, e.name), join(dir, e.name));
  }
  return dir;
}

interface RawHeader {
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  data: Uint8Array;
}

/** Splits a safetensors file into its JSON header and data section. */
async function readRaw(path: string): Promise<RawHeader> {
  const bytes = await Deno.readFile(path);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header, data: bytes.subarray(8 + n) };
}

/** Writes a safetensors file from a (possibly doctored) header and a data section. */
async function writeRaw(path: string, { header, data }: RawHeader): Promise<void> {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  await Deno.writeFile(path, out);
}

/** Engine.load(dir) fails with `errorClass` whose message has every part; returns the message. */
async function loadFails(
  dir: string,
  errorClass: typeof ModelFormatError | typeof ModelConfigError,
  ...parts: string[]
): Promise<string> {
  const e = await assertRejects(() => Engine.load(dir, { threads: 1 }), errorClass);
  for (const p of parts) assertStringIncludes(e.message, p);
  return e.message;
}

/** Runs `fn` on a fresh copy of the fixture, then removes it. */
async function withCopy(fn: (dir: string, weights: string) => Promise<void>): Promise<void> {
  const dir = await copyFixture();
  try {
    await fn(dir, join(dir, "model.safetensors"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("bad input: a truncated safetensors file names the file and the tensor cut short", async () => {
  await withCopy(async (dir, weights) => {
    const { header } = await readRaw(weights);
    // The tensor whose bytes come last is the one a cut-short download loses.
    const last = Object.entries(header).filter(([k]) => k !== "__metadata__")
      .sort(([, a], [, b]) => b.data_offsets[1] - a.data_offsets[1])[0][0];
    await Deno.truncate(weights, (await Deno.stat(weights)).size - 100);
    await loadFails(dir, ModelFormatError, weights, `tensor ${last}`, "runs past the end of the file");
  });
});

Deno.test("bad input: a header whose offsets run past the file names the file and the tensor", async () => {
  await withCopy(async (dir, weights) => {
    const raw = await readRaw(weights);
    const name = "model.layers.0.self_attn.v_proj.weight";
    const [begin, end] = raw.header[name].data_offsets;
    const shift = raw.data.length; // same byte count, moved wholly past the end
    raw.header[name].data_offsets = [begin + shift, end + shift];
    await writeRaw(weights, raw);
    await loadFails(dir, ModelFormatError, weights, `tensor ${name}`, "runs past the end of the file");
  });
});

Deno.test("bad input: a tensor missing from the file names the tensor and the file", async () => {
  await withCopy(async (dir, weights) => {
    const raw = await readRaw(weights);
    const name = "model.layers.1.post_attention_layernorm.weight";
    delete raw.header[name];
    await writeRaw(weights, raw);
    await loadFails(dir, ModelFormatError, `tensor is missing`, `${name} (expected in ${weights})`);
  });
});

Deno.test("bad input: a tensor of the wrong shape for the config names tensor, file and config", async () => {
  await withCopy(async (dir, weights) => {
    const raw = await readRaw(weights);
    const name = "model.layers.0.mlp.up_proj.weight";
    assertEquals(raw.header[name].shape, [128, 64]);
    raw.header[name].shape = [64, 128]; // transposed: the same bytes, the wrong layout
    await writeRaw(weights, raw);
    await loadFails(
      dir,
      ModelFormatError,
      `${name} in ${weights} has shape [64, 128], expected [128, 64]`,
      "intermediate_size 128",
    );
  });
});

Deno.test("bad input: an unknown dtype names the dtype, the tensor and the file", async () => {
  await withCopy(async (dir, weights) => {
    const raw = await readRaw(weights);
    const name = "model.norm.weight";
    raw.header[name].dtype = "Q4_K";
    await writeRaw(weights, raw);
    await loadFails(
      dir,
      ModelFormatError,
      `unknown dtype Q4_K for tensor ${name} in file ${weights}`,
      "supported: F32, F16, BF16",
    );
  });
});

Deno.test("bad input: a bad config.json names the file and the key", async () => {
  await withCopy(async (dir) => {
    const path = join(dir, "config.json");
    const good = JSON.parse(await Deno.readTextFile(path));
    await Deno.writeTextFile(path, JSON.stringify(good).slice(0, -10));
    await loadFails(dir, ModelConfigError, path, "is not valid JSON");
    await Deno.writeTextFile(path, JSON.stringify({ ...good, num_attention_heads: "four" }));
    await loadFails(dir, ModelConfigError, `${path}: num_attention_heads must be a positive integer`);
    const { num_hidden_layers: _, ...noLayers } = good;
    await Deno.writeTextFile(path, JSON.stringify(noLayers));
    await loadFails(dir, ModelConfigError, `${path}: num_hidden_layers is missing`);
    await Deno.writeTextFile(path, JSON.stringify({ ...good, num_key_value_heads: 3 }));
    await loadFails(dir, ModelConfigError, `${path}: num_key_value_heads (3) must divide`);
    await Deno.writeTextFile(path, JSON.stringify({ ...good, architectures: ["GPT2LMHeadModel"] }));
    await loadFails(
      dir,
      ModelConfigError,
      path,
      "GPT2LMHeadModel is not supported",
      "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM",
    );
  });
});

Deno.test("bad input: after a refused checkpoint the same process loads the repaired one and generates", async () => {
  await withCopy(async (dir, weights) => {
    await Deno.truncate(weights, 100);
    await loadFails(dir, ModelFormatError, weights);
    await Deno.copyFile(join(SOURCE, "model.safetensors"), weights);
    const engine = await Engine.load(dir, { threads: 1 });
    try {
      const out = [];
      for await (const t of engine.generate([5, 17, 200], { maxTokens: 4, ignoreEos: true })) out.push(t.id);
      assertEquals(out.length, 4);
      assert(out.every((id) => id >= 0 && id < 512));
    } finally {
      await engine.close();
    }
  });
});
