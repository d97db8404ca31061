import assert from "node:assert/strict";
import { mistral } from "./mistral.ts";
import { assertConfigError, configOf } from "./arch_test_util.ts";

const A = "MistralForCausalLM";

Deno.test("mistral: sliding_window applies to every layer; null turns it off", () => {
  assert.equal(mistral.normalise(configOf(A, { sliding_window: 32 })).slidingWindow, 32);
  assert.equal(mistral.normalise(configOf(A, { sliding_window: null })).slidingWindow, 0);
  // transformers' MistralConfig default when the key is absent.
  assert.equal(mistral.normalise(configOf(A)).slidingWindow, 4096);
});

Deno.test("mistral: transformers' defaults (8 KV heads, 131072 positions, bos 1 / eos 2)", () => {
  const c = mistral.normalise(configOf(A, {
    num_attention_heads: 8,
    num_key_value_heads: undefined,
    max_position_embeddings: undefined,
    bos_token_id: undefined,
    eos_token_id: undefined,
  }));
  assert.deepEqual([c.nKvHeads, c.headDim, c.maxSeqLen, c.bosTokenId, c.eosTokenIds], [8, 8, 131072, 1, [2]]);
  assert.deepEqual([c.qkvBias, c.qkNorm], [false, false]);
});

Deno.test("mistral: explicit head_dim (Mistral-Nemo style) wins over hidden/heads", () => {
  assert.equal(mistral.normalise(configOf(A, { head_dim: 32 })).headDim, 32);
  assert.equal(mistral.normalise(configOf(A, { head_dim: null })).headDim, 16);
});

Deno.test("mistral: a bad sliding_window is rejected naming the key", () => {
  assertConfigError(() => mistral.normalise(configOf(A, { sliding_window: "big" })), "sliding_window");
});
