import assert from "node:assert/strict";
import { ConfigReader } from "./config_fields.ts";
import { parseModelConfig } from "./config.ts";
import type { TensorRoleName } from "./description.ts";
import { expectedTensors } from "./tensor_map.ts";
import { hfTensorShapes, tinyConfig } from "./test_util.ts";

const ARCHS = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"];

for (const arch of ARCHS) {
  for (const tied of [false, true]) {
    Deno.test(`${arch}${tied ? " (tied)" : ""}: names and shapes match what Hugging Face saves`, () => {
      const json = { ...tinyConfig(arch), tie_word_embeddings: tied, head_dim: 16 };
      const expected = expectedTensors(parseModelConfig(new ConfigReader("c", json)));
      const hf = hfTensorShapes(arch, json);
      assert.deepEqual(new Map(expected.map((t) => [t.name, t.shape])), hf);
    });
  }
}

Deno.test("roles and layers follow hearth.h", () => {
  const config = parseModelConfig(new ConfigReader("c", { ...tinyConfig("Qwen2ForCausalLM"), head_dim: 16 }));
  const byName = new Map(expectedTensors(config).map((t) => [t.name, t]));
  const check = (name: string, role: TensorRoleName, layer: number) => {
    const t = byName.get(name)!;
    assert.deepEqual([t.role, t.layer], [role, layer], name);
  };
  check("model.embed_tokens.weight", "tokenEmbd", -1);
  check("model.norm.weight", "outputNorm", -1);
  check("lm_head.weight", "lmHead", -1);
  check("model.layers.1.input_layernorm.weight", "attnNorm", 1);
  check("model.layers.1.self_attn.q_proj.weight", "wq", 1);
  check("model.layers.0.self_attn.k_proj.weight", "wk", 0);
  check("model.layers.0.self_attn.v_proj.weight", "wv", 0);
  check("model.layers.0.self_attn.o_proj.weight", "wo", 0);
  check("model.layers.0.self_attn.q_proj.bias", "bq", 0);
  check("model.layers.0.self_attn.k_proj.bias", "bk", 0);
  check("model.layers.0.self_attn.v_proj.bias", "bv", 0);
  check("model.layers.0.post_attention_layernorm.weight", "ffnNorm", 0);
  check("model.layers.0.mlp.gate_proj.weight", "wGate", 0);
  check("model.layers.0.mlp.up_proj.weight", "wUp", 0);
  check("model.layers.0.mlp.down_proj.weight", "wDown", 0);
  assert.equal(
    byName.get("model.layers.1.mlp.up_proj.weight")!.dims,
    "hidden_size 64 / intermediate_size 128",
  );
});
