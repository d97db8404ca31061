import assert from "node:assert/strict";
import type { TensorRoleName } from "./description.ts";
import { ModelConfigError, ModelFormatError } from "./errors.ts";
import { readGgufHeader } from "./gguf.ts";
import { describeGguf, ggufTensorName } from "./gguf_model.ts";
import { haveSmollm2, rejectsWith, SMOLLM2_GGUF, tinyGgufModel } from "./gguf_test_util.ts";
import { gv } from "./gguf_write.ts";
import { ropeInvFreq } from "./rope.ts";
import { expectedTensors } from "./tensor_map.ts";

Deno.test("llama: roles, [out, in] shapes, dtypes, offsets, dimensions, interleaved RoPE", async () => {
  const path = await tinyGgufModel({ arch: "llama", extra: { "unused.weight": { dims: [8], type: "F32" } } });
  const d = await describeGguf(path);
  const c = d.description.config;
  assert.deepEqual(
    {
      architecture: c.architecture,
      dim: c.dim,
      hiddenDim: c.hiddenDim,
      nLayers: c.nLayers,
      nHeads: c.nHeads,
      nKvHeads: c.nKvHeads,
      headDim: c.headDim,
      vocabSize: c.vocabSize,
      maxSeqLen: c.maxSeqLen,
      slidingWindow: c.slidingWindow,
      normEps: c.normEps,
      attnScale: c.attnScale,
      ropeStyle: c.ropeStyle,
      qkvBias: c.qkvBias,
      qkNorm: c.qkNorm,
      tiedEmbeddings: c.tiedEmbeddings,
      bosTokenId: c.bosTokenId,
      eosTokenIds: c.eosTokenIds,
    },
    {
      architecture: "llama",
      dim: 64,
      hiddenDim: 128,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 2,
      headDim: 16,
      vocabSize: 512,
      maxSeqLen: 256,
      slidingWindow: 0,
      normEps: 1e-5, // stored as f32, read back as the decimal it was written from
      attnScale: 0.25,
      ropeStyle: "interleaved",
      qkvBias: false,
      qkNorm: false,
      tiedEmbeddings: false,
      bosTokenId: 0,
      eosTokenIds: [2],
    },
  );
  assert.deepEqual(
    c.ropeInvFreq,
    ropeInvFreq(16, { theta: 500000, scaling: { type: "default" }, attentionFactor: 1 }),
  );

  const header = await readGgufHeader(path);
  const refs = d.description.tensors;
  // Every tensor the config needs, in tensor_map order, under its GGUF name.
  assert.deepEqual(
    refs.map((r) => [r.name, r.role, r.layer]),
    expectedTensors(c).map((e) => [ggufTensorName(e.role, e.layer), e.role, e.layer]),
  );
  const byRole = (role: TensorRoleName, layer = 0) => refs.find((r) => r.role === role && r.layer === layer)!;
  assert.deepEqual(byRole("tokenEmbd", -1).shape, [512, 64]);
  assert.deepEqual(byRole("wq").shape, [64, 64]);
  assert.deepEqual(byRole("wk").shape, [32, 64]);
  assert.deepEqual(byRole("wv").shape, [32, 64]);
  assert.deepEqual(byRole("wo").shape, [64, 64]);
  assert.deepEqual(byRole("wGate").shape, [128, 64]);
  assert.deepEqual(byRole("wUp").shape, [128, 64]);
  assert.deepEqual(byRole("wDown", 1).shape, [64, 128]);
  assert.deepEqual(byRole("attnNorm").shape, [64]);
  assert.deepEqual(byRole("lmHead", -1).shape, [512, 64]);
  assert.equal(byRole("tokenEmbd", -1).dtype, "q8_0");
  assert.equal(byRole("tokenEmbd", -1).nbytes, 512 * 64 / 32 * 34);
  assert.equal(byRole("wk").dtype, "f16");
  assert.equal(byRole("wk").nbytes, 32 * 64 * 2);
  assert.equal(byRole("ffnNorm", 1).dtype, "f32");
  for (const r of refs) {
    const t = header.tensorsByName.get(r.name)!;
    assert.equal(r.offset, t.offset, r.name);
    assert.equal(r.nbytes, t.nbytes, r.name);
    assert.equal(r.file, 0);
    assert.deepEqual(r.shape, [...t.dims].reverse());
  }
  assert.deepEqual(d.description.files, [path]);
  assert.equal(d.description.storedDtype, "f16");
  assert.deepEqual(d.ignoredTensors, ["unused.weight"]);
  assert.deepEqual(d.generation, { eosTokenIds: [2], bosTokenId: 0, padTokenId: 0 });
  assert.equal(d.tokenizer!.vocabSize, 512);
  assert.ok(d.chatTemplate!.includes("<|im_start|>"));
});

Deno.test("qwen2: q/k/v biases, half RoPE, tied embeddings", async () => {
  const d = await describeGguf(await tinyGgufModel({ arch: "qwen2", tied: true, weightType: "Q8_0" }));
  const c = d.description.config;
  assert.equal(c.ropeStyle, "half");
  assert.equal(c.qkvBias, true);
  assert.equal(c.qkNorm, false);
  assert.equal(c.tiedEmbeddings, true);
  assert.ok(!d.description.tensors.some((t) => t.role === "lmHead"));
  const bk = d.description.tensors.find((t) => t.role === "bk" && t.layer === 1)!;
  assert.deepEqual([bk.name, bk.shape, bk.dtype], ["blk.1.attn_k.bias", [32], "f32"]);
  assert.equal(d.description.storedDtype, "q8_0");
});

Deno.test("qwen3: q/k norms and a key_length different from embedding / heads", async () => {
  const d = await describeGguf(await tinyGgufModel({ arch: "qwen3", headDim: 32, weightType: "BF16" }));
  const c = d.description.config;
  assert.equal(c.headDim, 32);
  assert.equal(c.qkNorm, true);
  assert.equal(c.ropeStyle, "half");
  const wq = d.description.tensors.find((t) => t.role === "wq")!;
  assert.deepEqual([wq.shape, wq.dtype], [[128, 64], "bf16"]);
  const wo = d.description.tensors.find((t) => t.role === "wo")!;
  assert.deepEqual(wo.shape, [64, 128]);
  assert.deepEqual(d.description.tensors.find((t) => t.role === "kNorm")!.shape, [32]);
  assert.equal(c.ropeInvFreq.length, 16);
});

Deno.test("llama3 RoPE: rope_freqs.weight divides the base frequencies", async () => {
  // The per-frequency factors llama.cpp's converter writes for rope_type llama3.
  const [factor, low, high, orig] = [8, 1, 4, 64];
  const base = ropeInvFreq(16, { theta: 500000, scaling: { type: "default" }, attentionFactor: 1 });
  const factors = Float32Array.from(base, (f) => {
    const wavelen = 2 * Math.PI / f;
    if (wavelen < orig / high) return 1;
    if (wavelen > orig / low) return factor;
    const smooth = (orig / wavelen - low) / (high - low);
    return 1 / ((1 - smooth) / factor + smooth);
  });
  const d = await describeGguf(
    await tinyGgufModel({
      extra: { "rope_freqs.weight": { dims: [8], type: "F32", data: new Uint8Array(factors.buffer) } },
    }),
  );
  const want = ropeInvFreq(16, {
    theta: 500000,
    scaling: {
      type: "llama3",
      factor,
      lowFreqFactor: low,
      highFreqFactor: high,
      originalMaxPositionEmbeddings: orig,
    },
    attentionFactor: 1,
  });
  const got = d.description.config.ropeInvFreq;
  for (let i = 0; i < 8; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= want[i] * 1e-6, `${i}: ${got[i]} vs ${want[i]}`);
  }
  assert.ok(got[7] < base[7] / 7); // the lowest frequency is scaled down by ~8
  assert.equal(got[0], base[0]);
  assert.deepEqual(d.ignoredTensors, []);
});

Deno.test("linear RoPE scaling; yarn is refused", async () => {
  const d = await describeGguf(
    await tinyGgufModel({
      metadata: { "llama.rope.scaling.type": gv.str("linear"), "llama.rope.scaling.factor": gv.f32(2) },
    }),
  );
  assert.deepEqual(
    d.description.config.ropeInvFreq,
    ropeInvFreq(16, { theta: 500000, scaling: { type: "linear", factor: 2 }, attentionFactor: 1 }),
  );
  const path = await tinyGgufModel({ metadata: { "llama.rope.scaling.type": gv.str("yarn") } });
  await rejectsWith(describeGguf(path), ModelConfigError, path, "llama.rope.scaling.type", `"yarn"`);
});

Deno.test("error: an architecture hearth does not run", async () => {
  const path = await tinyGgufModel({ metadata: { "general.architecture": gv.str("gemma2") } });
  await rejectsWith(
    describeGguf(path),
    ModelConfigError,
    path,
    "general.architecture",
    `"gemma2"`,
    "llama, qwen2, qwen3",
  );
});

Deno.test("error: a tensor type hearth does not compute with names the tensor", async () => {
  const path = await tinyGgufModel({ override: { "blk.1.ffn_up.weight": { type: "IQ4_NL" } } });
  await rejectsWith(
    describeGguf(path),
    ModelFormatError,
    path,
    "tensor blk.1.ffn_up.weight",
    "IQ4_NL",
    "supported: F32",
  );
  const q81 = await tinyGgufModel({ override: { "blk.0.attn_v.weight": { type: 9 } } });
  await rejectsWith(describeGguf(q81), ModelFormatError, "blk.0.attn_v.weight", "Q8_1 (ggml type 9)");
});

Deno.test("error: a missing tensor, a missing bias, a missing key", async () => {
  const path = await tinyGgufModel({ omit: ["blk.1.ffn_down.weight"] });
  await rejectsWith(
    describeGguf(path),
    ModelFormatError,
    path,
    "tensor is missing for llama: blk.1.ffn_down.weight",
  );
  const qwen2 = await tinyGgufModel({ arch: "qwen2", omit: ["blk.0.attn_q.bias"] });
  await rejectsWith(describeGguf(qwen2), ModelFormatError, "blk.0.attn_q.bias", "qwen2 has q/k/v biases");
  const key = await tinyGgufModel({ metadata: { "llama.attention.layer_norm_rms_epsilon": undefined } });
  await rejectsWith(
    describeGguf(key),
    ModelConfigError,
    key,
    "metadata llama.attention.layer_norm_rms_epsilon is missing",
  );
  const typed = await tinyGgufModel({ metadata: { "llama.block_count": gv.str("2") } });
  await rejectsWith(
    describeGguf(typed),
    ModelConfigError,
    "llama.block_count is a string, expected an integer",
  );
});

Deno.test("error: sizes past what hearth takes, before anything is sized by them", async () => {
  // 2^32 - 1 layers once made the loader build per-layer tables until the JS heap ran out.
  const layers = await tinyGgufModel({ metadata: { "llama.block_count": gv.u32(2 ** 32 - 1) } });
  await rejectsWith(describeGguf(layers), ModelConfigError, "llama.block_count is 4294967295", "4096");
  const wide = await tinyGgufModel({ metadata: { "llama.embedding_length": gv.u64(2n ** 40n) } });
  await rejectsWith(
    describeGguf(wide),
    ModelConfigError,
    "llama.embedding_length is 1099511627776",
    "2147483647",
  );
  const head = await tinyGgufModel({ metadata: { "llama.attention.key_length": gv.u32(4096) } });
  await rejectsWith(
    describeGguf(head),
    ModelConfigError,
    "llama.attention.key_length is 4096",
    "at most 1024",
  );
});

Deno.test("error: a transposed weight (dims not in GGUF [in, out] order)", async () => {
  const path = await tinyGgufModel({ override: { "blk.0.attn_k.weight": { dims: [32, 64] } } });
  await rejectsWith(
    describeGguf(path),
    ModelFormatError,
    "tensor blk.0.attn_k.weight has GGUF dims [32, 64] (shape [64, 32] as [out, in]), expected shape [32, 64]",
    "llama.attention.head_count_kv 2",
  );
});

Deno.test("error: features hearth does not implement", async () => {
  const bias = await tinyGgufModel({ extra: { "blk.0.attn_output.bias": { dims: [64], type: "F32" } } });
  await rejectsWith(describeGguf(bias), ModelFormatError, "blk.0.attn_output.bias", "o_proj");
  const partial = await tinyGgufModel({ metadata: { "llama.rope.dimension_count": gv.u32(8) } });
  await rejectsWith(
    describeGguf(partial),
    ModelConfigError,
    "llama.rope.dimension_count is 8",
    "whole heads",
  );
  const moe = await tinyGgufModel({ metadata: { "llama.expert_count": gv.u32(8) } });
  await rejectsWith(describeGguf(moe), ModelConfigError, "llama.expert_count", "mixture-of-experts");
});

Deno.test("generation defaults: EOT joins EOS; sampling keys", async () => {
  const d = await describeGguf(
    await tinyGgufModel({
      metadata: {
        "tokenizer.ggml.eot_token_id": gv.u32(1),
        "general.sampling.temp": gv.f32(0.7),
        "general.sampling.top_k": gv.i32(40),
      },
    }),
  );
  assert.deepEqual(d.generation, {
    eosTokenIds: [2, 1],
    bosTokenId: 0,
    padTokenId: 0,
    temperature: 0.7,
    topK: 40,
  });
});

Deno.test({
  name: haveSmollm2()
    ? "the SmolLM2-135M-Instruct Q4_1 GGUF"
    : "the SmolLM2-135M-Instruct Q4_1 GGUF (SKIPPED: run scripts/fetch_smollm2.sh)",
  ignore: !haveSmollm2(),
  fn: async () => {
    const d = await describeGguf(SMOLLM2_GGUF);
    const c = d.description.config;
    assert.deepEqual(
      [
        c.architecture,
        c.nLayers,
        c.dim,
        c.hiddenDim,
        c.nHeads,
        c.nKvHeads,
        c.headDim,
        c.vocabSize,
        c.maxSeqLen,
      ],
      ["llama", 30, 576, 1536, 9, 3, 64, 49152, 8192],
    );
    assert.equal(c.normEps, 1e-5);
    assert.equal(c.tiedEmbeddings, true);
    assert.equal(c.ropeStyle, "interleaved");
    assert.deepEqual(
      c.ropeInvFreq,
      ropeInvFreq(64, { theta: 100000, scaling: { type: "default" }, attentionFactor: 1 }),
    );
    assert.equal(d.description.storedDtype, "q4_1");
    const dtypes = new Map(d.description.tensors.map((t) => [t.name, t.dtype]));
    assert.equal(dtypes.get("token_embd.weight"), "q8_0");
    assert.equal(dtypes.get("blk.0.attn_q.weight"), "q4_1");
    assert.equal(dtypes.get("blk.29.ffn_down.weight"), "q4_1");
    assert.equal(dtypes.get("output_norm.weight"), "f32");
    assert.equal(d.description.tensors.length, 1 + 30 * 9 + 1);
    const down = d.description.tensors.find((t) => t.name === "blk.0.ffn_down.weight")!;
    assert.deepEqual(down.shape, [576, 1536]);
    assert.equal(down.nbytes, 576 * 1536 / 32 * 20);
    assert.deepEqual(d.ignoredTensors, []);
    assert.ok(d.chatTemplate!.includes("<|im_start|>"));
    assert.deepEqual(d.generation.eosTokenIds, [2]);
    assert.equal(d.tokenizer!.vocabSize, 49152);
  },
});
