import assert from "node:assert/strict";
import { qwen2 } from "./qwen2.ts";
import { assertConfigError, configOf } from "./arch_test_util.ts";

const A = "Qwen2ForCausalLM";

Deno.test("qwen2: q/k/v biases, no q/k norm, no bos/eos defaults", () => {
  const c = qwen2.normalise(configOf(A, { bos_token_id: undefined, eos_token_id: undefined }));
  assert.deepEqual([c.qkvBias, c.qkNorm], [true, false]);
  assert.deepEqual([c.bosTokenId, c.eosTokenIds], [null, []]);
  assert.equal(c.headDim, 16);
});

Deno.test("qwen2: sliding_window counts only with use_sliding_window", () => {
  assert.equal(qwen2.normalise(configOf(A, { sliding_window: 32 })).slidingWindow, 0);
  assert.equal(
    qwen2.normalise(configOf(A, { sliding_window: 32, use_sliding_window: false })).slidingWindow,
    0,
  );
  // max_window_layers >= num_hidden_layers: no layer slides.
  assert.equal(
    qwen2.normalise(configOf(A, { sliding_window: 32, use_sliding_window: true, max_window_layers: 2 }))
      .slidingWindow,
    0,
  );
  assert.equal(
    qwen2.normalise(configOf(A, { sliding_window: 32, use_sliding_window: true, max_window_layers: 0 }))
      .slidingWindow,
    32,
  );
  assert.equal(
    qwen2.normalise(configOf(A, {
      sliding_window: 32,
      use_sliding_window: true,
      layer_types: ["sliding_attention", "sliding_attention"],
    })).slidingWindow,
    32,
  );
});

Deno.test("qwen2: a window on only some layers is rejected", () => {
  assertConfigError(
    () =>
      qwen2.normalise(configOf(A, { sliding_window: 32, use_sliding_window: true, max_window_layers: 1 })),
    "use_sliding_window",
    "1 of 2 layers",
  );
  assertConfigError(
    () =>
      qwen2.normalise(configOf(A, {
        sliding_window: 32,
        use_sliding_window: true,
        layer_types: ["full_attention", "sliding_attention"],
      })),
    "1 of 2 layers",
  );
});

Deno.test("qwen2: malformed layer_types are rejected", () => {
  const base = { sliding_window: 32, use_sliding_window: true };
  assertConfigError(
    () => qwen2.normalise(configOf(A, { ...base, layer_types: ["full_attention"] })),
    "layer_types has 1",
  );
  assertConfigError(
    () => qwen2.normalise(configOf(A, { ...base, layer_types: ["full_attention", "chunked_attention"] })),
    '"chunked_attention"',
  );
});

Deno.test("qwen2: attention_bias is not a Qwen2 key and is ignored", () => {
  assert.equal(qwen2.normalise(configOf(A, { attention_bias: true })).qkvBias, true);
});
