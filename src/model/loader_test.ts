import assert from "node:assert/strict";
import { join } from "node:path";
import { type DType, DTYPE_BYTES } from "./description.ts";
import { ModelFormatError } from "./errors.ts";
import { describeModel, parseDtypeOption } from "./loader.ts";
import { readSafetensorsHeader } from "./safetensors.ts";
import { type TinyModelOptions, writeTinyModel } from "./test_util.ts";

async function tiny(options: TinyModelOptions = {}) {
  const dir = await Deno.makeTempDir();
  const written = await writeTinyModel(dir, options);
  return { dir, ...written };
}

async function rejects(dir: string, ...parts: string[]) {
  await assert.rejects(describeModel(dir), (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${e}`);
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

for (const arch of ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"]) {
  Deno.test(`describes a tiny ${arch}: every tensor with its role, file and byte range`, async () => {
    const { dir, tensors } = await tiny({ architecture: arch, config: { head_dim: 16 } });
    const { description, generation, ignoredTensors } = await describeModel(dir);
    assert.equal(description.config.architecture, arch);
    assert.deepEqual(description.files, [join(dir, "model.safetensors")]);
    assert.equal(description.storedDtype, "f32");
    assert.deepEqual(generation, {});
    assert.deepEqual(ignoredTensors, []);
    assert.deepEqual(description.tensors.map((t) => t.name).sort(), [...tensors.keys()].sort());
    // Byte ranges are the ones in the file header.
    const header = await readSafetensorsHeader(description.files[0]);
    for (const t of description.tensors) {
      const h = header.tensors.get(t.name)!;
      assert.deepEqual([t.offset, t.nbytes, t.dtype, t.file], [h.offset, h.nbytes, "f32", 0]);
      assert.equal(t.nbytes, t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype as DType]);
    }
    const roles = new Set(description.tensors.map((t) => t.role));
    assert.equal(roles.has("bq"), arch === "Qwen2ForCausalLM");
    assert.equal(roles.has("qNorm"), arch === "Qwen3ForCausalLM");
    assert.ok(roles.has("lmHead"));
  });
}

Deno.test("tied embeddings: no lmHead, and a stored lm_head.weight is ignored", async () => {
  const { dir } = await tiny({
    config: { tie_word_embeddings: true },
    extra: { "lm_head.weight": { dtype: "F32", shape: [96, 64] } },
  });
  const { description, ignoredTensors } = await describeModel(dir);
  assert.ok(!description.tensors.some((t) => t.role === "lmHead"));
  assert.deepEqual(ignoredTensors, ["lm_head.weight"]);
});

Deno.test("untied embeddings without lm_head.weight: error naming it and the file", async () => {
  const { dir } = await tiny({ omit: ["lm_head.weight"] });
  await rejects(
    dir,
    `tensor is missing for LlamaForCausalLM: lm_head.weight (expected in ${join(dir, "model.safetensors")})`,
    "tie_word_embeddings false",
  );
});

Deno.test("a missing layer tensor is named with the file it should be in", async () => {
  const { dir } = await tiny({ omit: ["model.layers.1.self_attn.k_proj.weight"] });
  await rejects(
    dir,
    `model.layers.1.self_attn.k_proj.weight (expected in ${join(dir, "model.safetensors")})`,
  );
});

Deno.test("missing tensors in a sharded checkpoint name the shard the index assigns", async () => {
  const { dir } = await tiny({ architecture: "Qwen2ForCausalLM", shards: 2 });
  // Drop a tensor from the index: the index itself is where it should have been listed.
  const indexPath = join(dir, "model.safetensors.index.json");
  const index = JSON.parse(await Deno.readTextFile(indexPath));
  delete index.weight_map["model.layers.0.self_attn.q_proj.bias"];
  await Deno.writeTextFile(indexPath, JSON.stringify(index));
  await rejects(dir, "model.layers.0.self_attn.q_proj.bias (expected in", "does not list it", "q/k/v biases");
});

Deno.test("many missing tensors are summarised", async () => {
  const omit = ["gate", "up", "down"].flatMap((m) =>
    [0, 1].map((l) => `model.layers.${l}.mlp.${m}_proj.weight`)
  );
  const { dir } = await tiny({ omit });
  await rejects(dir, "6 tensors are missing", "model.layers.0.mlp.gate_proj.weight");
  const all = await tiny({
    omit: [...omit, "model.norm.weight", "model.embed_tokens.weight", "lm_head.weight"],
  });
  await rejects(all.dir, "9 tensors are missing", ", and 1 more");
});

Deno.test("a tensor of the wrong shape is named with the expected shape and the config values", async () => {
  const { dir } = await tiny({ override: { "model.layers.1.mlp.up_proj.weight": { shape: [128, 60] } } });
  await rejects(
    dir,
    `model.layers.1.mlp.up_proj.weight in ${join(dir, "model.safetensors")} has shape [128, 60], ` +
      `expected [128, 64] for hidden_size 64 / intermediate_size 128`,
  );
});

Deno.test("a transposed projection is caught", async () => {
  const { dir } = await tiny({ override: { "model.layers.0.self_attn.k_proj.weight": { shape: [64, 32] } } });
  await rejects(
    dir,
    "has shape [64, 32], expected [32, 64] for num_key_value_heads 2 × head_dim 16 / hidden_size 64",
  );
});

Deno.test("a wrong vocabulary size is caught on the embedding", async () => {
  const { dir } = await tiny({
    config: { vocab_size: 100 },
    override: { "model.embed_tokens.weight": { shape: [96, 64] } },
  });
  await rejects(dir, "model.embed_tokens.weight", "expected [100, 64] for vocab_size 100 / hidden_size 64");
});

Deno.test("an unsupported dtype in the weights is reported with tensor and file", async () => {
  const { dir } = await tiny({ override: { "model.norm.weight": { dtype: "F64" } } });
  await rejects(
    dir,
    `unsupported dtype F64 for tensor model.norm.weight in file ${join(dir, "model.safetensors")}; ` +
      `supported: F32, F16, BF16`,
  );
});

Deno.test("a truncated safetensors file is reported as running past the end of the file", async () => {
  const { dir } = await tiny();
  const path = join(dir, "model.safetensors");
  await Deno.truncate(path, (await Deno.stat(path)).size - 1);
  await rejects(dir, path, "lm_head.weight", "runs past the end of the file");
});

Deno.test("unknown extra tensors are ignored without error", async () => {
  const { dir } = await tiny({
    extra: {
      "model.layers.0.self_attn.rotary_emb.inv_freq": { dtype: "F32", shape: [8] },
      "something.else": { dtype: "I64", shape: [1] },
    },
  });
  // Even one of a dtype hearth cannot compute with: only the dtypes of needed tensors matter.
  const { ignoredTensors } = await describeModel(dir);
  assert.deepEqual(ignoredTensors, ["model.layers.0.self_attn.rotary_emb.inv_freq", "something.else"]);
});

Deno.test("a needed tensor of an unsupported dtype is reported even in a sharded checkpoint", async () => {
  const { dir } = await tiny({ shards: 2, override: { "model.norm.weight": { dtype: "I32" } } });
  await rejects(
    dir,
    "unsupported dtype I32 for tensor model.norm.weight in file",
    "supported: F32, F16, BF16",
  );
});

Deno.test("mixed dtypes are kept per tensor; storedDtype is that of most parameters", async () => {
  const norms = ["model.norm.weight", "model.layers.0.input_layernorm.weight"];
  const { dir } = await tiny({
    dtype: "BF16",
    override: Object.fromEntries(norms.map((n) => [n, { dtype: "F32" }])),
  });
  const { description } = await describeModel(dir);
  assert.equal(description.storedDtype, "bf16");
  for (const t of description.tensors) assert.equal(t.dtype, norms.includes(t.name) ? "f32" : "bf16", t.name);
  const f16 = await tiny({ dtype: "F16" });
  assert.equal((await describeModel(f16.dir)).description.storedDtype, "f16");
});

Deno.test("generation_config.json is read unless turned off", async () => {
  const { dir } = await tiny();
  await Deno.writeTextFile(join(dir, "generation_config.json"), JSON.stringify({ temperature: 0.7 }));
  assert.deepEqual((await describeModel(dir)).generation, { temperature: 0.7 });
  assert.deepEqual((await describeModel(dir, { generationConfig: false })).generation, {});
});

Deno.test("parseDtypeOption is exported here too", () => {
  assert.deepEqual(parseDtypeOption("bf16"), { dtype: "bf16" });
});

// ---- the committed Hugging Face fixtures (test/oracle/make_fixtures.py) ----

const FIXTURES = new URL("../../test/fixtures/models/", import.meta.url);

interface FixtureExpectation {
  architecture: string;
  headDim: number;
  nKvHeads: number;
  storedDtype: string;
  files: number;
  slidingWindow: number;
  tied: boolean;
  qkvBias: boolean;
  qkNorm: boolean;
  /** config.json's eos ids. */
  eos: number[];
  /** generation_config.json's eos ids, when it lists them. */
  generationEos?: number[];
}

const FIXTURE_EXPECTATIONS: Record<string, FixtureExpectation> = {
  "llama-f32": fx("LlamaForCausalLM", 16, 2, "f32", { eos: [2] }),
  "llama-bf16": fx("LlamaForCausalLM", 16, 2, "bf16", { eos: [2] }),
  "llama-f16": fx("LlamaForCausalLM", 16, 2, "f16", { eos: [2] }),
  "llama-linear-f32": fx("LlamaForCausalLM", 16, 1, "f32", { tied: true }),
  "mistral-f32": fx("MistralForCausalLM", 16, 2, "f32", {}),
  "mistral-sw-f32": fx("MistralForCausalLM", 16, 2, "f32", { slidingWindow: 8 }),
  "qwen2-f32": fx("Qwen2ForCausalLM", 16, 2, "f32", {
    tied: true,
    qkvBias: true,
    eos: [2],
    generationEos: [2, 0],
  }),
  "qwen2-sharded-f32": fx("Qwen2ForCausalLM", 16, 2, "f32", { tied: true, qkvBias: true, files: 3 }),
  "qwen3-f32": fx("Qwen3ForCausalLM", 16, 2, "f32", { qkNorm: true }),
  "qwen3-hd32-f32": fx("Qwen3ForCausalLM", 32, 2, "f32", { qkNorm: true, tied: true }),
};

function fx(
  architecture: string,
  headDim: number,
  nKvHeads: number,
  storedDtype: string,
  rest: Partial<FixtureExpectation>,
): FixtureExpectation {
  return {
    architecture,
    headDim,
    nKvHeads,
    storedDtype,
    files: 1,
    slidingWindow: 0,
    tied: false,
    qkvBias: false,
    qkNorm: false,
    eos: [],
    ...rest,
  };
}

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch {
    return false;
  }
}

for (const [name, want] of Object.entries(FIXTURE_EXPECTATIONS)) {
  const dir = new URL(`${name}/`, FIXTURES);
  Deno.test({
    name: `fixture ${name} describes with the expected dimensions`,
    // Fixtures are generated by test/oracle/make_fixtures.py; skip visibly rather than fail if absent.
    ignore: !(await exists(new URL("config.json", dir))),
    fn: async () => {
      const { description, generation } = await describeModel(dir.pathname);
      const c = description.config;
      assert.equal(c.architecture, want.architecture);
      assert.deepEqual(
        [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.vocabSize, c.maxSeqLen],
        [64, 128, 2, 4, want.nKvHeads, want.headDim, 512, 256],
      );
      assert.equal(c.ropeInvFreq.length, want.headDim / 2);
      assert.equal(c.attnScale, 1 / Math.sqrt(want.headDim));
      assert.equal(c.slidingWindow, want.slidingWindow);
      assert.deepEqual([c.tiedEmbeddings, c.qkvBias, c.qkNorm], [want.tied, want.qkvBias, want.qkNorm]);
      assert.equal(c.bosTokenId, 0);
      if (want.eos.length > 0) assert.deepEqual(c.eosTokenIds, want.eos);
      assert.equal(description.storedDtype, want.storedDtype);
      assert.equal(description.files.length, want.files);
      const perLayer = 9 + (want.qkvBias ? 3 : 0) + (want.qkNorm ? 2 : 0);
      assert.equal(description.tensors.length, 2 + (want.tied ? 0 : 1) + 2 * perLayer);
      if (want.generationEos) assert.deepEqual(generation.eosTokenIds, want.generationEos);
    },
  });
}

Deno.test({
  name: "fixture llama-f32: llama3 rope and generation_config.json",
  ignore: !(await exists(new URL("llama-f32/config.json", FIXTURES))),
  fn: async () => {
    const { description, generation } = await describeModel(new URL("llama-f32/", FIXTURES).pathname);
    // head_dim 16, theta 5e5, factor 8, original context 64: the lowest frequencies are divided by 8.
    const inv = description.config.ropeInvFreq;
    assert.equal(inv[0], 1);
    assert.ok(inv[7] < Math.fround(1 / Math.pow(500000, 14 / 16)) / 7.9);
    assert.equal(generation.doSample, true);
    assert.equal(generation.temperature, 0.7);
    assert.equal(generation.topP, 0.9);
  },
});
