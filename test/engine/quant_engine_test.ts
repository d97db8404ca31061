/**
 * Quantized weights through the whole forward pass: GGUF files of every block type, and Hugging Face
 * checkpoints quantized at load (--quantize).
 *
 * The reference for a quantized model is the same model with its weights dequantized to f32 at load
 * (float kernels): the only difference left is the quantization of the activations to 8 bits for the
 * integer dot products, about 0.5% of a value, so logits agree within a few percent of their range.
 * A wrong block layout or scale gives differences as large as the logits themselves.
 */
import { assert } from "../assert.ts";
import { tinyGgufModel } from "../../src/model/gguf_test_util.ts";
import { describeModelPath } from "../../src/model/describe.ts";
import type { WeightDType } from "../../src/model/description.ts";
import { LogitsMode, NativeContext, NativeModel, StepBatch } from "../../src/native/hearth.ts";
import { goldenLogits, maxAbsDiff, openFixture, readGolden } from "./fixtures.ts";

const PROMPT = Array.from({ length: 20 }, (_, i) => (i * 37) % 512);

async function logitsOf(path: string, dtype: WeightDType | "auto"): Promise<Float32Array> {
  const { description } = await describeModelPath(path, { tokenizer: false });
  const model = await NativeModel.load(description, dtype);
  const ctx = await NativeContext.create(model, {
    threads: 2,
    kvBlockSize: 16,
    kvNumBlocks: 8,
    maxBatchTokens: 64,
    maxBatchSeqs: 2,
    maxBlocksPerSeq: 16,
  });
  try {
    const b = new StepBatch(ctx.options, 512);
    b.clear(LogitsMode.all);
    b.addSequence(PROMPT, 0, [0, 1], null);
    await ctx.step(b);
    return b.outLogits!.slice(0, PROMPT.length * 512);
  } finally {
    ctx.free();
    model.free();
  }
}

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

const TYPES: [string, number, number][] = [
  ["Q8_0", 64, 128],
  ["Q4_0", 64, 128],
  ["Q4_1", 64, 128],
  ["Q5_0", 64, 128],
  ["Q5_1", 64, 128],
  // K-quants need rows of whole 256-blocks.
  ["Q2_K", 256, 512],
  ["Q3_K", 256, 512],
  ["Q4_K", 256, 512],
  ["Q5_K", 256, 512],
  ["Q6_K", 256, 512],
];

for (const [type, dim, hidden] of TYPES) {
  Deno.test(`quantized GGUF ${type}: integer kernels agree with the dequantized model`, async () => {
    const path = await tinyGgufModel({ weightType: type, embdType: type, dim, hidden });
    try {
      const quant = await logitsOf(path, "auto");
      const float = await logitsOf(path, "f32");
      const rel = maxAbsDiff(quant, float) / maxAbs(float);
      assert(Number.isFinite(rel) && rel < 0.03, `${type}: relative difference ${rel}`);
    } finally {
      await Deno.remove(path);
    }
  });
}

Deno.test("--quantize at load: q8_0 stays within 3x of bf16's rounding gap; q4 saves memory", async () => {
  const g = readGolden("llama-f32");
  const rounded = readGolden("llama-bf16");
  const results: Record<string, { diff: number; owned: number }> = {};
  for (const q of ["q8_0", "q4_0"] as const) {
    const { ctx, model, close } = await openFixture(g.model_dir, { dtype: q });
    try {
      const b = new StepBatch(ctx.options, 512);
      let diff = 0, gap = 0;
      for (let s = 0; s < g.sequences.length; s++) {
        b.clear(LogitsMode.all);
        b.addSequence(g.sequences[s], 0, [0, 1, 2], null);
        await ctx.step(b);
        const want = goldenLogits(g, s);
        diff = Math.max(diff, maxAbsDiff(b.outLogits!.subarray(0, want.length), want));
        gap = Math.max(gap, maxAbsDiff(goldenLogits(rounded, s), want));
      }
      results[q] = { diff, owned: model.ownedBytes() };
      if (q === "q8_0") assert(diff < 3 * gap, `q8_0: ${diff} vs bf16 gap ${gap}`);
    } finally {
      close();
    }
  }
  // f32 matrices are 4 bytes a weight: q8_0 holds 34 bytes per 32, q4_0 18 per 32.
  const ratio = results.q4_0.owned / results.q8_0.owned;
  assert(Math.abs(ratio - 18 / 34) < 0.01, `q4_0/q8_0 memory ratio ${ratio}`);
});
