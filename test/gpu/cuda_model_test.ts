/**
 * Full-model parity of the CUDA backend on the committed fixture checkpoints (`deno task test:gpu`;
 * ignored where the CUDA library or a device is missing):
 *
 *  - every architecture in f32 on the device against transformers' golden logits (the CPU's bound,
 *    1e-4) and against the CPU backend, alone and batched, and the 32-token greedy continuations;
 *  - bf16 / f16 / q8_0 / q4_0 / q4_k (converted at load the same way on both backends) against the CPU
 *    backend at the same dtype, with bounds per dtype;
 *  - a 200-token prompt (attention split into parts), then decodes with CUDA Graphs, against the CPU;
 *  - a seeded sampled generation gives the CPU's tokens; a prefill in one step or in chunks agrees;
 *  - bad batches and an impossible KV cache are error messages, not crashes.
 *
 * Bounds for the 16-bit and quantized dtypes are first estimates written before this ran on a GPU.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { haveCudaDevice } from "../../src/native/cuda_testing.ts";
import { LogitsMode, NativeContext, NativeModel, StepBatch } from "../../src/native/hearth.ts";
import type { Device } from "../../src/native/device.ts";
import type { WeightDType } from "../../src/model/description.ts";
import { describeModel } from "../../src/model/loader.ts";
import { Engine } from "../../src/engine/engine.ts";
import { goldenLogits, goldenNames, maxAbsDiff, readGolden, ROOT } from "../engine/fixtures.ts";

const GPU = haveCudaDevice();
const ignore = !GPU;
const CUDA: Device = { kind: "cuda", index: 0 };
const CPU: Device = { kind: "cpu" };

/** GPU vs CPU max abs difference of logits (logits std about 1.65 on these fixtures), per dtype. */
const BOUND: Record<string, number> = {
  f32: 1e-4,
  bf16: 2e-4, // same bf16 weights; the device splits activations into two bf16 halves in its tiles
  f16: 2e-4,
  q8_0: 0.08, // both quantize activations to 8 bits, with different scales (f32 per 32 here, the CPU's f16
  q4_0: 0.08, //   per 32 / f32 per 256): the difference is the sum of two such roundings
  q4_k: 0.08,
};

async function open(dir: string, device: Device, dtype: WeightDType | "auto", maxBatchTokens = 256) {
  const { description } = await describeModel(`${ROOT}${dir}`);
  const model = await NativeModel.load(description, dtype, device);
  const ctx = await NativeContext.create(model, {
    threads: 2,
    kvBlockSize: 16,
    kvNumBlocks: 64,
    maxBatchTokens,
    maxBatchSeqs: 8,
    maxBlocksPerSeq: Math.ceil(description.config.maxSeqLen / 16),
  });
  return { model, ctx, vocab: description.config.vocabSize, close: () => (ctx.free(), model.free()) };
}

/** Logits of every position of each sequence: alone, then all in one batch. */
async function allLogits(ctx: NativeContext, vocab: number, seqs: number[][]): Promise<Float32Array[]> {
  const batch = new StepBatch(ctx.options, vocab);
  const blocks = (n: number, base: number) => Array.from({ length: Math.ceil(n / 16) }, (_, i) => base + i);
  const out: Float32Array[] = [];
  for (const seq of seqs) {
    batch.clear(LogitsMode.all);
    batch.addSequence(seq, 0, blocks(seq.length, 0), null);
    await ctx.step(batch);
    out.push(batch.outLogits!.slice(0, seq.length * vocab));
  }
  batch.clear(LogitsMode.all);
  let base = 0;
  for (const seq of seqs) {
    batch.addSequence(seq, 0, blocks(seq.length, base), null);
    base += Math.ceil(seq.length / 16);
  }
  await ctx.step(batch);
  out.push(batch.outLogits!.slice(0, seqs.reduce((n, s) => n + s.length, 0) * vocab));
  return out;
}

for (const name of goldenNames()) {
  const g = readGolden(name);
  Deno.test({
    name: `cuda model: ${name} in f32 against transformers and the CPU (alone, batched)`,
    ignore,
    fn: async () => {
      const gpu = await open(g.model_dir, CUDA, "f32"), cpu = await open(g.model_dir, CPU, "f32");
      try {
        const a = await allLogits(gpu.ctx, g.vocab_size, g.sequences);
        const b = await allLogits(cpu.ctx, g.vocab_size, g.sequences);
        for (let s = 0; s < g.sequences.length; s++) {
          const golden = maxAbsDiff(a[s], goldenLogits(g, s));
          assert(golden <= 1e-4, `${name} sequence ${s}: vs transformers ${golden}`);
          const d = maxAbsDiff(a[s], b[s]);
          assert(d <= BOUND.f32, `${name} sequence ${s}: vs CPU ${d}`);
        }
        const d = maxAbsDiff(a[g.sequences.length], b[g.sequences.length]);
        assert(d <= BOUND.f32, `${name} batched: vs CPU ${d}`);
      } finally {
        gpu.close();
        cpu.close();
      }
    },
  });

  Deno.test({
    name: `cuda model: ${name} greedy continuation on the device (32 tokens, token for token)`,
    ignore,
    fn: async () => {
      const engine = await Engine.load(`${ROOT}${g.model_dir}`, { device: "cuda:0", dtype: "f32" });
      try {
        for (const gr of g.greedy) {
          const out: number[] = [];
          for await (
            const t of engine.generate(g.sequences[gr.sequence_index], {
              temperature: 0,
              repetitionPenalty: 1,
              maxTokens: 32,
              ignoreEos: true,
            })
          ) out.push(t.id);
          assertEquals(out, gr.new_tokens, `${name} greedy from sequence ${gr.sequence_index}`);
        }
      } finally {
        await engine.close();
      }
    },
  });
}

for (const dtype of ["bf16", "f16", "q8_0", "q4_0", "q4_k"] as const) {
  Deno.test({
    name:
      `cuda model: llama, qwen3 and mistral-sw converted to ${dtype} at load, against the CPU at ${dtype}`,
    ignore,
    fn: async () => {
      for (const name of ["llama-f32", "qwen3-f32", "mistral-sw-f32"]) {
        const g = readGolden(name);
        const gpu = await open(g.model_dir, CUDA, dtype), cpu = await open(g.model_dir, CPU, dtype);
        try {
          assertEquals(gpu.model.dtype, dtype);
          const a = await allLogits(gpu.ctx, g.vocab_size, g.sequences);
          const b = await allLogits(cpu.ctx, g.vocab_size, g.sequences);
          for (let s = 0; s < a.length; s++) {
            const d = maxAbsDiff(a[s], b[s]);
            assert(
              d <= BOUND[dtype],
              `${name} ${dtype} ${s === g.sequences.length ? "batched" : `sequence ${s}`}: ${d}`,
            );
          }
        } finally {
          gpu.close();
          cpu.close();
        }
      }
    },
  });
}

Deno.test({
  name: "cuda model: a 200-token prompt (split attention), then 20 decodes (graphs), against the CPU",
  ignore,
  fn: async () => {
    for (const name of ["llama-f32", "mistral-sw-f32", "qwen2-f32"]) {
      const g = readGolden(name);
      const runs: Float32Array[][] = [];
      for (const device of [CUDA, CPU]) {
        const m = await open(g.model_dir, device, "f32");
        try {
          const prompt = Array.from({ length: 200 }, (_, i) => (i * 37 + 11) % g.vocab_size);
          const table = Array.from({ length: 16 }, (_, i) => 40 - i); // scattered, descending blocks
          const batch = new StepBatch(m.ctx.options, g.vocab_size);
          const rows: Float32Array[] = [];
          batch.clear(LogitsMode.last);
          batch.addSequence(prompt, 0, table, null);
          await m.ctx.step(batch);
          rows.push(batch.outLogits!.slice(0, g.vocab_size));
          let tok = 5;
          for (let i = 0; i < 20; i++) {
            batch.clear(LogitsMode.last);
            batch.addSequence([tok], 200 + i, table, null);
            await m.ctx.step(batch);
            rows.push(batch.outLogits!.slice(0, g.vocab_size));
            tok = (tok * 7 + 3) % g.vocab_size;
          }
          runs.push(rows);
        } finally {
          m.close();
        }
      }
      for (let i = 0; i < runs[0].length; i++) {
        const d = maxAbsDiff(runs[0][i], runs[1][i]);
        assert(d <= BOUND.f32, `${name} step ${i}: ${d}`);
      }
    }
  },
});

Deno.test({
  name:
    "cuda model: a seeded sampled generation gives the CPU's tokens; chunked prefill agrees with one step",
  ignore,
  fn: async () => {
    const dir = `${ROOT}test/fixtures/models/llama-f32`;
    const params = { temperature: 0.9, topP: 0.95, topK: 50, seed: 1234, maxTokens: 48, ignoreEos: true };
    const prompt = [1, 17, 33, 250, 9, 480, 77];
    const tokens: number[][] = [];
    for (const device of ["cuda:0", "cpu"]) {
      const e = await Engine.load(dir, { device, dtype: "f32", threads: 2 });
      try {
        const out: number[] = [];
        for await (const t of e.generate(prompt, params)) out.push(t.id);
        tokens.push(out);
      } finally {
        await e.close();
      }
    }
    assertEquals(tokens[0], tokens[1]);

    const m = await open("test/fixtures/models/llama-f32", CUDA, "f32");
    try {
      const seq = Array.from({ length: 90 }, (_, i) => (i * 13 + 5) % m.vocab);
      const batch = new StepBatch(m.ctx.options, m.vocab);
      batch.clear(LogitsMode.last);
      batch.addSequence(seq, 0, [0, 1, 2, 3, 4, 5], null);
      await m.ctx.step(batch);
      const one = batch.outLogits!.slice(0, m.vocab);
      for (const [a, b] of [[0, 40], [40, 83], [83, 90]]) {
        batch.clear(LogitsMode.last);
        batch.addSequence(seq.slice(a, b), a, [10, 11, 12, 13, 14, 15], null);
        await m.ctx.step(batch);
      }
      const d = maxAbsDiff(batch.outLogits!.subarray(0, m.vocab), one);
      assert(d <= 1e-4, `chunked vs one step: ${d}`);
    } finally {
      m.close();
    }
  },
});

Deno.test({
  name: "cuda model: bad batches and an impossible KV cache are errors with messages",
  ignore,
  fn: async () => {
    const m = await open("test/fixtures/models/llama-f32", CUDA, "f32");
    try {
      const batch = new StepBatch(m.ctx.options, m.vocab);
      batch.clear();
      batch.addSequence([1, 2, 3], 0, [9999], null);
      await assertRejects(() => m.ctx.step(batch), Error, "block 0 is 9999");
      batch.clear();
      batch.addSequence([m.vocab + 5], 0, [0], null);
      await assertRejects(() => m.ctx.step(batch), Error, "out of range");
      // The context still works after refused batches.
      batch.clear(LogitsMode.last);
      batch.addSequence([1, 2, 3], 0, [0], null);
      await m.ctx.step(batch);
      assert(Number.isFinite(batch.outLogits![0]));
      // 2^31 blocks of 4096 tokens cannot be allocated: a NOMEM message, no crash.
      await assertRejects(
        () =>
          NativeContext.create(m.model, {
            threads: 1,
            kvBlockSize: 4096,
            kvNumBlocks: 2 ** 31 - 1,
            maxBatchTokens: 16,
            maxBatchSeqs: 1,
            maxBlocksPerSeq: 1,
          }),
        Error,
        "allocating the context",
      );
    } finally {
      m.close();
    }
  },
});
