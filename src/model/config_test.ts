import assert from "node:assert/strict";
import { join } from "node:path";
import { readModelConfig } from "./config.ts";
import { ModelConfigError } from "./errors.ts";
import { tinyConfig } from "./test_util.ts";

async function dirWith(text: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "config.json"), text);
  return dir;
}

async function rejects(dir: string, ...parts: string[]) {
  await assert.rejects(readModelConfig(dir), (e: unknown) => {
    assert.ok(e instanceof ModelConfigError, `expected ModelConfigError, got ${e}`);
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

Deno.test("reads a Llama config.json", async () => {
  const dir = await dirWith(JSON.stringify(tinyConfig("LlamaForCausalLM")));
  const c = await readModelConfig(dir);
  assert.equal(c.architecture, "LlamaForCausalLM");
  assert.equal(c.dim, 64);
  assert.equal(c.headDim, 16);
  assert.equal(c.nKvHeads, 2);
  assert.equal(c.ropeInvFreq.length, 8);
});

Deno.test("invalid JSON is rejected naming the file", async () => {
  const dir = await dirWith('{"hidden_size": 64,');
  await rejects(dir, join(dir, "config.json"), "not valid JSON");
});

Deno.test("a missing key is rejected naming the file and key", async () => {
  const c = tinyConfig();
  delete c.num_hidden_layers;
  const dir = await dirWith(JSON.stringify(c));
  await rejects(dir, `${join(dir, "config.json")}: num_hidden_layers is missing`);
});

Deno.test("a mistyped key is rejected naming the file, key and value", async () => {
  const dir = await dirWith(JSON.stringify({ ...tinyConfig(), hidden_size: "abc" }));
  await rejects(dir, `${join(dir, "config.json")}: hidden_size must be a positive integer, got "abc"`);
});

Deno.test("sizes past what hearth takes are rejected before anything is sized by them", async () => {
  // 2^32 + 1 layers once made the loader build per-layer tables until the JS heap ran out.
  for (
    const [key, value, message] of [
      ["num_hidden_layers", 2 ** 32 + 1, "num_hidden_layers must be at most 4096, got 4294967297"],
      ["hidden_size", 2 ** 31, "hidden_size must be at most 2147483647, got 2147483648"],
      ["head_dim", 2048, "head_dim is 2048; hearth's kernels take at most 1024"],
    ] as const
  ) {
    const dir = await dirWith(JSON.stringify({ ...tinyConfig(), [key]: value }));
    await rejects(dir, `${join(dir, "config.json")}: ${message}`);
  }
});

Deno.test("an unsupported architecture is rejected, listing the supported ones", async () => {
  const dir = await dirWith(JSON.stringify({ ...tinyConfig(), architectures: ["GPT2LMHeadModel"] }));
  await rejects(
    dir,
    join(dir, "config.json"),
    "architecture GPT2LMHeadModel is not supported",
    "supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM",
  );
});

Deno.test("without architectures, model_type picks the architecture", async () => {
  const c: Record<string, unknown> = { ...tinyConfig(), model_type: "qwen2" };
  delete c.architectures;
  assert.equal((await readModelConfig(await dirWith(JSON.stringify(c)))).architecture, "Qwen2ForCausalLM");
  c.model_type = "gpt2";
  await rejects(await dirWith(JSON.stringify(c)), "model_type gpt2", "supported architectures:");
  delete c.model_type;
  await rejects(await dirWith(JSON.stringify(c)), "no architectures or model_type key");
});

Deno.test("an empty architectures list is rejected", async () => {
  await rejects(
    await dirWith(JSON.stringify({ ...tinyConfig(), architectures: [] })),
    "architectures is empty",
  );
});

Deno.test("a missing config.json is reported", async () => {
  const dir = await Deno.makeTempDir();
  await rejects(dir, `no config.json in ${dir}`);
});

Deno.test("an unsupported rope type in config.json is rejected", async () => {
  const dir = await dirWith(
    JSON.stringify({ ...tinyConfig(), rope_scaling: { rope_type: "yarn", factor: 4 } }),
  );
  await rejects(dir, join(dir, "config.json"), "rope_type", '"yarn"', "supported rope types");
});
