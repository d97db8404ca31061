import assert from "node:assert/strict";
import { ModelConfigError } from "../errors.ts";
import { findArchitecture, supportedArchitectures } from "./registry.ts";

Deno.test("the four Llama-family architectures are registered", () => {
  assert.deepEqual(supportedArchitectures(), [
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
  ]);
  for (const name of supportedArchitectures()) {
    assert.equal(findArchitecture("c.json", name, null).name, name);
  }
  assert.equal(findArchitecture("c.json", null, "qwen3").name, "Qwen3ForCausalLM");
  // architectures wins over model_type.
  assert.equal(findArchitecture("c.json", "MistralForCausalLM", "llama").name, "MistralForCausalLM");
});

Deno.test("an unknown architecture names itself and the supported ones", () => {
  assert.throws(
    () => findArchitecture("/m/config.json", "Qwen3MoeForCausalLM", "qwen3_moe"),
    (e: unknown) => {
      assert.ok(e instanceof ModelConfigError);
      assert.equal(
        e.message,
        "/m/config.json: architecture Qwen3MoeForCausalLM is not supported; supported architectures: " +
          "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM",
      );
      return true;
    },
  );
});
