/**
 * GGUF end to end without the big file: the mistral-f32 fixture's weights written as a GGUF the way
 * llama.cpp's converter lays out a `llama` model (dims reversed, Q/K rows permuted for interleaved
 * RoPE), loaded through the GGUF path, must give transformers' golden logits.
 */
import { assert } from "../assert.ts";
import { type GgufTensorToWrite, gv, writeGguf } from "../../src/model/gguf_write.ts";
import { readSafetensorsHeader } from "../../src/model/safetensors.ts";
import { Engine } from "../../src/engine/engine.ts";
import { describeModelPath } from "../../src/model/describe.ts";
import { LogitsMode, NativeContext, NativeModel, StepBatch } from "../../src/native/hearth.ts";
import { goldenLogits, maxAbsDiff, readGolden, ROOT } from "./fixtures.ts";

/** Within each head, rows [first half; second half] become interleaved pairs, as the converter does. */
function permuteForInterleavedRope(
  w: Float32Array,
  rows: number,
  cols: number,
  nHeads: number,
): Float32Array {
  const out = new Float32Array(w.length);
  const hd = rows / nHeads, half = hd / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      out.set(w.subarray((h * hd + i) * cols, (h * hd + i + 1) * cols), (h * hd + 2 * i) * cols);
      out.set(
        w.subarray((h * hd + half + i) * cols, (h * hd + half + i + 1) * cols),
        (h * hd + 2 * i + 1) * cols,
      );
    }
  }
  return out;
}

async function ggufFromFixture(name: string): Promise<string> {
  const dir = `${ROOT}test/fixtures/models/${name}`;
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  const header = await readSafetensorsHeader(`${dir}/model.safetensors`);
  const bytes = await Deno.readFile(`${dir}/model.safetensors`);
  const get = (n: string) => {
    const t = header.tensors.get(n)!;
    return { data: new Float32Array(bytes.slice(t.offset, t.offset + t.nbytes).buffer), shape: t.shape };
  };
  const heads = config.num_attention_heads, kvHeads = config.num_key_value_heads;
  const tensors: GgufTensorToWrite[] = [];
  const add = (ggufName: string, hfName: string, permuteHeads = 0) => {
    const { data, shape } = get(hfName);
    const rows = shape[0], cols = shape.length > 1 ? shape[1] : 0;
    const d = permuteHeads ? permuteForInterleavedRope(data, rows, cols, permuteHeads) : data;
    tensors.push({ name: ggufName, dims: [...shape].reverse(), type: "F32", data: new Uint8Array(d.buffer) });
  };
  add("token_embd.weight", "model.embed_tokens.weight");
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`, q = `blk.${l}.`;
    add(q + "attn_norm.weight", p + "input_layernorm.weight");
    add(q + "attn_q.weight", p + "self_attn.q_proj.weight", heads);
    add(q + "attn_k.weight", p + "self_attn.k_proj.weight", kvHeads);
    add(q + "attn_v.weight", p + "self_attn.v_proj.weight");
    add(q + "attn_output.weight", p + "self_attn.o_proj.weight");
    add(q + "ffn_norm.weight", p + "post_attention_layernorm.weight");
    add(q + "ffn_gate.weight", p + "mlp.gate_proj.weight");
    add(q + "ffn_up.weight", p + "mlp.up_proj.weight");
    add(q + "ffn_down.weight", p + "mlp.down_proj.weight");
  }
  add("output_norm.weight", "model.norm.weight");
  if (header.tensors.has("lm_head.weight")) add("output.weight", "lm_head.weight");
  const meta = new Map([
    ["general.architecture", gv.str("llama")],
    ["llama.context_length", gv.u32(config.max_position_embeddings)],
    ["llama.embedding_length", gv.u32(config.hidden_size)],
    ["llama.block_count", gv.u32(config.num_hidden_layers)],
    ["llama.feed_forward_length", gv.u32(config.intermediate_size)],
    ["llama.attention.head_count", gv.u32(heads)],
    ["llama.attention.head_count_kv", gv.u32(kvHeads)],
    ["llama.rope.freq_base", gv.f32(config.rope_parameters?.rope_theta ?? config.rope_theta)],
    ["llama.attention.layer_norm_rms_epsilon", gv.f32(config.rms_norm_eps)],
  ]);
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  await writeGguf(path, { metadata: meta, tensors });
  return path;
}

Deno.test("GGUF path: a llama-layout GGUF of a fixture reproduces transformers' logits", async () => {
  const g = readGolden("mistral-f32");
  const path = await ggufFromFixture("mistral-f32");
  try {
    const { description } = await describeModelPath(path, { tokenizer: false });
    assert(description.config.ropeStyle === "interleaved");
    const model = await NativeModel.load(description, "auto");
    const ctx = await NativeContext.create(model, {
      threads: 2,
      kvBlockSize: 16,
      kvNumBlocks: 8,
      maxBatchTokens: 64,
      maxBatchSeqs: 2,
      maxBlocksPerSeq: 16,
    });
    try {
      const b = new StepBatch(ctx.options, g.vocab_size);
      for (let s = 0; s < g.sequences.length; s++) {
        b.clear(LogitsMode.all);
        b.addSequence(g.sequences[s], 0, [0, 1, 2], null);
        await ctx.step(b);
        const diff = maxAbsDiff(
          b.outLogits!.subarray(0, g.sequences[s].length * g.vocab_size),
          goldenLogits(g, s),
        );
        assert(diff <= 1e-4, `sequence ${s}: ${diff}`);
      }
    } finally {
      ctx.free();
      model.free();
    }
    // And through Engine.load, which recognises the file.
    const engine = await Engine.load(path, { threads: 1 });
    try {
      const out: number[] = [];
      for await (
        const t of engine.generate(g.sequences[0], { temperature: 0, maxTokens: 32, ignoreEos: true })
      ) {
        out.push(t.id);
      }
      assert(JSON.stringify(out) === JSON.stringify(g.greedy[0].new_tokens), `greedy: ${out}`);
    } finally {
      await engine.close();
    }
  } finally {
    await Deno.remove(path);
  }
});
