import assert from "node:assert/strict";
import { llama } from "./llama.ts";
import { assertConfigError, configOf } from "./arch_test_util.ts";

const A = "LlamaForCausalLM";

Deno.test("llama: dimensions and features of the tiny config", () => {
  const c = llama.normalise(configOf(A));
  assert.equal(c.architecture, A);
  assert.deepEqual(
    [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.vocabSize, c.maxSeqLen],
    [64, 128, 2, 4, 2, 16, 96, 256],
  );
  assert.equal(c.normEps, 1e-5);
  assert.equal(c.attnScale, 0.25);
  assert.equal(c.ropeStyle, "half");
  assert.equal(c.ropeAttnFactor, 1);
  assert.deepEqual([c.qkvBias, c.qkNorm, c.tiedEmbeddings, c.slidingWindow], [false, false, false, 0]);
  assert.deepEqual([c.bosTokenId, c.eosTokenIds], [1, [2]]);
});

Deno.test("llama: transformers' defaults for absent keys", () => {
  const c = llama.normalise(configOf(A, {
    num_key_value_heads: undefined,
    max_position_embeddings: undefined,
    rms_norm_eps: undefined,
    tie_word_embeddings: undefined,
    bos_token_id: undefined,
    eos_token_id: undefined,
    rope_theta: undefined,
  }));
  assert.deepEqual([c.nKvHeads, c.maxSeqLen, c.normEps, c.tiedEmbeddings], [4, 2048, 1e-6, false]);
  assert.deepEqual([c.bosTokenId, c.eosTokenIds], [1, [2]]);
  assert.equal(c.ropeInvFreq[1], Math.fround(1 / Math.fround(Math.pow(10000, Math.fround(2 / 16)))));
});

Deno.test("llama: config.json values win (explicit head_dim, tied embeddings, eos list, llama3 rope)", () => {
  const c = llama.normalise(configOf(A, {
    head_dim: 32,
    tie_word_embeddings: true,
    eos_token_id: [128001, 128008, 128009],
    bos_token_id: null,
    rope_scaling: {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    },
  }));
  assert.equal(c.headDim, 32);
  assert.equal(c.attnScale, 1 / Math.sqrt(32));
  assert.equal(c.ropeInvFreq.length, 16);
  assert.equal(c.tiedEmbeddings, true);
  assert.deepEqual(c.eosTokenIds, [128001, 128008, 128009]);
  assert.equal(c.bosTokenId, null);
  // The lowest frequency is divided by the factor.
  const plain = llama.normalise(configOf(A, { head_dim: 32 })).ropeInvFreq;
  assert.equal(c.ropeInvFreq[15], Math.fround(plain[15] / 8));
});

Deno.test("llama: attention_bias (which biases o_proj too) and mlp_bias are rejected", () => {
  assertConfigError(() => llama.normalise(configOf(A, { attention_bias: true })), "attention_bias", "o_proj");
  assertConfigError(() => llama.normalise(configOf(A, { mlp_bias: true })), "mlp_bias");
  llama.normalise(configOf(A, { attention_bias: false, mlp_bias: false }));
});

Deno.test("llama: inconsistent head counts are rejected", () => {
  assertConfigError(
    () => llama.normalise(configOf(A, { num_key_value_heads: 3 })),
    "num_key_value_heads (3)",
  );
  assertConfigError(
    () => llama.normalise(configOf(A, { num_attention_heads: 5 })),
    "hidden_size (64) is not a multiple of num_attention_heads (5)",
  );
  assertConfigError(() => llama.normalise(configOf(A, { head_dim: 15 })), "head_dim must be even");
});

Deno.test("llama: a non-SiLU activation is rejected", () => {
  assertConfigError(() => llama.normalise(configOf(A, { hidden_act: "gelu" })), 'hidden_act is "gelu"');
});

Deno.test("llama: sliding_window keys are ignored", () => {
  assert.equal(llama.normalise(configOf(A, { sliding_window: 16 })).slidingWindow, 0);
});
