import assert from "node:assert/strict";
import { qwen3 } from "./qwen3.ts";
import { assertConfigError, configOf } from "./arch_test_util.ts";

const A = "Qwen3ForCausalLM";

Deno.test("qwen3: q/k norms, no biases, explicit head_dim", () => {
  const c = qwen3.normalise(configOf(A, { head_dim: 32 }));
  assert.deepEqual([c.qkvBias, c.qkNorm], [false, true]);
  assert.equal(c.headDim, 32);
  assert.equal(c.ropeInvFreq.length, 16);
});

Deno.test("qwen3: head_dim defaults to 128 as in transformers, not hidden/heads", () => {
  assert.equal(qwen3.normalise(configOf(A)).headDim, 128);
});

Deno.test("qwen3: attention_bias (o_proj bias too) is rejected", () => {
  assertConfigError(() => qwen3.normalise(configOf(A, { attention_bias: true })), "attention_bias", "o_proj");
});

Deno.test("qwen3: rope_parameters as transformers 5 writes them", () => {
  const c = qwen3.normalise(configOf(A, {
    head_dim: 16,
    rope_theta: undefined,
    rope_parameters: { rope_theta: 1000000.0, rope_type: "default" },
  }));
  assert.equal(c.ropeInvFreq[1], Math.fround(1 / Math.fround(Math.pow(1e6, Math.fround(2 / 16)))));
});
