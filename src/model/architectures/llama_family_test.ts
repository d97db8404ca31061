import assert from "node:assert/strict";
import { type FamilyTraits, normaliseLlamaFamily } from "./llama_family.ts";
import { assertConfigError, configOf } from "./arch_test_util.ts";

const traits: FamilyTraits = {
  architecture: "TestForCausalLM",
  maxPositionEmbeddings: 77,
  numKeyValueHeads: null,
  headDim: null,
  bosTokenId: 5,
  eosTokenId: 6,
  qkvBias: true,
  hasAttentionBiasKey: false,
  hasMlpBiasKey: false,
  qkNorm: true,
  slidingWindow: "none",
};

Deno.test("the traits' defaults and flags are used", () => {
  const c = normaliseLlamaFamily(
    configOf("X", { max_position_embeddings: undefined, bos_token_id: undefined, eos_token_id: undefined }),
    traits,
  );
  assert.equal(c.architecture, "TestForCausalLM");
  assert.deepEqual([c.maxSeqLen, c.bosTokenId, c.eosTokenIds, c.qkvBias, c.qkNorm], [77, 5, [6], true, true]);
});

Deno.test("every required key is reported by name when missing", () => {
  for (
    const key of [
      "hidden_size",
      "intermediate_size",
      "num_hidden_layers",
      "num_attention_heads",
      "vocab_size",
    ]
  ) {
    assertConfigError(
      () => normaliseLlamaFamily(configOf("X", { [key]: undefined }), traits),
      `${key} is missing`,
    );
  }
});

Deno.test("mistyped optional keys are reported by name", () => {
  assertConfigError(
    () => normaliseLlamaFamily(configOf("X", { rms_norm_eps: "small" }), traits),
    "rms_norm_eps",
  );
  assertConfigError(
    () => normaliseLlamaFamily(configOf("X", { tie_word_embeddings: 1 }), traits),
    "tie_word_embeddings must be true or false",
  );
  assertConfigError(() => normaliseLlamaFamily(configOf("X", { eos_token_id: "2" }), traits), "eos_token_id");
});
