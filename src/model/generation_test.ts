import assert from "node:assert/strict";
import { join } from "node:path";
import { ModelConfigError } from "./errors.ts";
import { readGenerationDefaults } from "./generation.ts";

async function dirWith(json: unknown): Promise<string> {
  const dir = await Deno.makeTempDir();
  const text = typeof json === "string" ? json : JSON.stringify(json);
  await Deno.writeTextFile(join(dir, "generation_config.json"), text);
  return dir;
}

async function rejects(dir: string, ...parts: string[]) {
  await assert.rejects(readGenerationDefaults(dir), (e: unknown) => {
    assert.ok(e instanceof ModelConfigError, `expected ModelConfigError, got ${e}`);
    for (const p of [join(dir, "generation_config.json"), ...parts]) {
      assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    }
    return true;
  });
}

Deno.test("a Llama 3 Instruct style generation_config.json", async () => {
  const dir = await dirWith({
    bos_token_id: 128000,
    do_sample: true,
    eos_token_id: [128001, 128008, 128009],
    temperature: 0.6,
    top_p: 0.9,
    transformers_version: "4.45.0",
  });
  assert.deepEqual(await readGenerationDefaults(dir), {
    bosTokenId: 128000,
    doSample: true,
    eosTokenIds: [128001, 128008, 128009],
    temperature: 0.6,
    topP: 0.9,
  });
});

Deno.test("every field is read; nulls are left out", async () => {
  const dir = await dirWith({
    temperature: 0,
    top_p: 1,
    top_k: 20,
    min_p: 0.05,
    repetition_penalty: 1.1,
    max_new_tokens: 512,
    do_sample: false,
    eos_token_id: 2,
    bos_token_id: 1,
    pad_token_id: 0,
    max_length: null,
    pad_token: null,
  });
  assert.deepEqual(await readGenerationDefaults(dir), {
    temperature: 0,
    topP: 1,
    topK: 20,
    minP: 0.05,
    repetitionPenalty: 1.1,
    maxNewTokens: 512,
    doSample: false,
    eosTokenIds: [2],
    bosTokenId: 1,
    padTokenId: 0,
  });
  assert.deepEqual(
    await readGenerationDefaults(await dirWith({ temperature: null, eos_token_id: null })),
    {},
  );
});

Deno.test("a missing generation_config.json gives no defaults", async () => {
  assert.deepEqual(await readGenerationDefaults(await Deno.makeTempDir()), {});
});

Deno.test("bad JSON is rejected naming the file", async () => {
  await rejects(await dirWith("{ temperature: 0.7 }"), "not valid JSON");
});

Deno.test("mistyped or out-of-range values are rejected naming the key", async () => {
  await rejects(await dirWith({ temperature: "hot" }), 'temperature must be a number, got "hot"');
  await rejects(await dirWith({ temperature: -1 }), "temperature must be >= 0");
  await rejects(await dirWith({ top_p: 1.5 }), "top_p must be in (0, 1]");
  await rejects(await dirWith({ top_k: 2.5 }), "top_k");
  await rejects(await dirWith({ min_p: 2 }), "min_p");
  await rejects(await dirWith({ do_sample: "yes" }), "do_sample must be true or false");
  await rejects(await dirWith({ eos_token_id: ["</s>"] }), "eos_token_id");
  await rejects(await dirWith({ max_new_tokens: 0 }), "max_new_tokens must be a positive integer");
});
