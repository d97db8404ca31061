/**
 * The native library's own checks: whatever TypeScript hands it, a bad description or batch is an
 * error message naming the problem, never a crash, and nothing stays allocated.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../assert.ts";
import { describeModel } from "../../src/model/loader.ts";
import type { ModelDescription } from "../../src/model/description.ts";
import {
  cpuIsa,
  type KvCacheDType,
  LogitsMode,
  NativeContext,
  NativeError,
  NativeModel,
  sequenceSampling,
  StepBatch,
} from "../../src/native/hearth.ts";
import { goldenLogits, maxAbsDiff, openFixture, readGolden, ROOT } from "./fixtures.ts";
import { isaNames } from "../../src/native/quant_testing.ts";

const DIR = `${ROOT}test/fixtures/models/llama-f32`;

async function description(): Promise<ModelDescription> {
  return (await describeModel(DIR)).description;
}

Deno.test("native: a tensor whose bytes run past its file is refused, naming the tensor and the file", async () => {
  const d = await description();
  const t = d.tensors.find((t) => t.role === "wq")!;
  t.offset = 10_000_000;
  const e = await assertRejects(() => NativeModel.load(d, "auto"), NativeError, t.name);
  assertStringIncludes(e.message, "run past the end of its file");
  assertStringIncludes(e.message, "model.safetensors");
});

Deno.test("native: wrong shape, wrong byte count, missing tensor, duplicate, bad dtype code", async () => {
  let d = await description();
  d.tensors.find((t) => t.role === "wUp")!.shape = [64, 128];
  let e = await assertRejects(() => NativeModel.load(d, "auto"), NativeError, "does not match the config");
  assertStringIncludes(e.message, "expected [128, 64]");

  d = await description();
  d.tensors.find((t) => t.role === "wk")!.nbytes -= 4;
  await assertRejects(() => NativeModel.load(d, "auto"), NativeError, "do not hold");

  d = await description();
  d.tensors = d.tensors.filter((t) => !(t.role === "wDown" && t.layer === 1));
  e = await assertRejects(() => NativeModel.load(d, "auto"), NativeError, "missing tensor");
  assertStringIncludes(e.message, "w_down of layer 1");

  d = await description();
  d.tensors.push({ ...d.tensors[0] });
  await assertRejects(() => NativeModel.load(d, "auto"), NativeError, "given twice");

  d = await description();
  d.files.push(`${ROOT}test/fixtures/does-not-exist.safetensors`);
  e = await assertRejects(() => NativeModel.load(d, "auto"), NativeError, "cannot open");
  assertStringIncludes(e.message, "does-not-exist.safetensors");

  d = await description();
  d.config = { ...d.config, nKvHeads: 3 };
  await assertRejects(() => NativeModel.load(d, "auto"), NativeError, "not a multiple of n_kv_heads");
});

Deno.test("native: a bad batch is an error and the context keeps working", async () => {
  const { ctx, close } = await openFixture("test/fixtures/models/llama-f32", {
    maxBatchTokens: 16,
    maxBatchSeqs: 2,
  });
  try {
    const b = new StepBatch(ctx.options, 512);
    const bad = async (fill: () => void, text: string) => {
      b.clear();
      fill();
      await assertRejects(() => ctx.step(b), NativeError, text);
    };
    await bad(() => b.addSequence([600], 0, [0], null), "token id 600");
    await bad(() => b.addSequence([1, 2], 0, [9999], null), "block 0 is 9999");
    await bad(() => b.addSequence([1, 2], 255, Array(16).fill(0), null), "past the context");
    await bad(() => {
      b.addSequence([1, 2], 0, [0], null);
      b.positions[1] = 5;
    }, "not consecutive");
    await bad(() => {
      b.addSequence([1], 0, [0], null);
      b.seqStart[1] = 0;
    }, "seq_start");
    await bad(() => b.addSequence([1], 0, [0], { ...neutral(), topP: 2 }), "out of range");
    // Still fine afterwards.
    b.clear(LogitsMode.last);
    b.addSequence([1, 2, 3], 0, [0], neutral());
    await ctx.step(b);
    assert(b.outTokens[0] >= 0 && b.outTokens[0] < 512);
  } finally {
    close();
  }
});

Deno.test("native: context options out of range are refused", async () => {
  const d = await description();
  const model = await NativeModel.load(d, "auto");
  try {
    const base = {
      threads: 1,
      kvBlockSize: 16,
      kvNumBlocks: 4,
      maxBatchTokens: 8,
      maxBatchSeqs: 2,
      maxBlocksPerSeq: 4,
    };
    for (const bad of [{ threads: 0 }, { kvBlockSize: 0 }, { maxBatchSeqs: 9 }]) {
      await assertRejects(
        () => NativeContext.create(model, { ...base, ...bad }),
        NativeError,
        "out of range",
      );
    }
    await assertRejects(
      () => NativeContext.create(model, { ...base, kvDtype: "bfloat16" as KvCacheDType }),
      NativeError,
      "kv_dtype -1 is neither float32 (0) nor float16 (1)",
    );
  } finally {
    model.free();
  }
});

Deno.test("native: --dtype conversions at load compute the same model", async () => {
  // llama-bf16 and llama-f16 hold llama-f32's weights rounded by torch; their goldens (transformers in
  // f32 on the rounded weights) show how far rounding alone moves the logits. Converting llama-f32 at
  // load must move them no further.
  const g = readGolden("llama-f32");
  for (const dtype of ["bf16", "f16"] as const) {
    const rounded = readGolden(`llama-${dtype}`);
    const { ctx, model, close } = await openFixture(g.model_dir, { dtype });
    try {
      assert(model.ownedBytes() > 0, "converted weights live in the model's memory");
      const b = new StepBatch(ctx.options, 512);
      for (let s = 0; s < g.sequences.length; s++) {
        b.clear(LogitsMode.all);
        b.addSequence(g.sequences[s], 0, [0, 1, 2], null);
        await ctx.step(b);
        const diff = maxAbsDiff(b.outLogits!.subarray(0, g.sequences[s].length * 512), goldenLogits(g, s));
        const roundingGap = maxAbsDiff(goldenLogits(rounded, s), goldenLogits(g, s));
        assert(
          diff <= 1.25 * roundingGap + 1e-3,
          `${dtype} sequence ${s}: ${diff} vs rounding gap ${roundingGap}`,
        );
      }
    } finally {
      close();
    }
  }
});

Deno.test("native: weights used in their stored dtype are mapped from the files, not copied", async () => {
  for (const name of ["llama-f32", "llama-bf16", "qwen2-sharded-f32"]) {
    const { description: d } = await describeModel(`${ROOT}test/fixtures/models/${name}`);
    const { model, close } = await openFixture(`test/fixtures/models/${name}`, { dtype: "auto" });
    try {
      let fileBytes = 0;
      for (const f of d.files) fileBytes += (await Deno.stat(f)).size;
      assertEquals(model.mappedBytes(), fileBytes, `${name}: every file is mapped`);
      // At most the 1-D tensors (norm weights, biases) are widened to f32; no matrix is copied.
      const vectorsAsF32 = d.tensors.filter((t) => t.shape.length === 1)
        .reduce((n, t) => n + t.shape[0] * 4, 0);
      const owned = model.ownedBytes();
      assert(owned <= (d.storedDtype === "f32" ? 0 : vectorsAsF32), `${name}: ${owned} bytes copied`);
    } finally {
      close();
    }
  }
});

Deno.test("native: weights in memory (--no-mmap): every mapped tensor copied once, the same logits bit for bit", async () => {
  for (const name of ["llama-f32", "llama-bf16", "qwen2-sharded-f32"]) {
    const g = readGolden(name);
    const { description: d } = await describeModel(`${ROOT}test/fixtures/models/${name}`);
    const mapped = await openFixture(`test/fixtures/models/${name}`);
    const copied = await openFixture(`test/fixtures/models/${name}`, { inMemory: true });
    try {
      // What the mapped model reads from its files (every matrix, and the 1-D tensors already f32; the
      // others were widened into its own memory), each copied once, 64-byte aligned.
      const fromFiles = d.tensors.filter((t) => t.shape.length > 1 || t.dtype === "f32")
        .reduce((n, t) => n + Math.ceil(t.nbytes / 64) * 64, 0);
      assertEquals(copied.model.ownedBytes() - mapped.model.ownedBytes(), fromFiles, name);
      const a = new StepBatch(mapped.ctx.options, g.vocab_size),
        b = new StepBatch(copied.ctx.options, g.vocab_size);
      const seq = g.sequences[0];
      for (const [ctx, batch] of [[mapped.ctx, a], [copied.ctx, b]] as const) {
        batch.clear(LogitsMode.all);
        batch.addSequence(seq, 0, [0, 1, 2], null);
        await ctx.step(batch);
      }
      assertEquals(
        Array.from(b.outLogits!.subarray(0, seq.length * g.vocab_size)),
        Array.from(a.outLogits!.subarray(0, seq.length * g.vocab_size)),
        name,
      );
    } finally {
      mapped.close();
      copied.close();
    }
  }
});

Deno.test("native: paged KV cache: scattered, out-of-order block tables give the golden logits step by step", async () => {
  const g = readGolden("llama-f32");
  const { ctx, close } = await openFixture(g.model_dir);
  try {
    const b = new StepBatch(ctx.options, 512);
    // Two sequences whose blocks interleave in the cache, in no order (block size 16).
    const seqs = [{ s: 2, table: [41, 3, 17] }, { s: 1, table: [16, 40] }];
    const got = seqs.map(({ s }) => new Float32Array(g.sequences[s].length * 512));
    const prefill = 12;
    b.clear(LogitsMode.all);
    for (const { s, table } of seqs) b.addSequence(g.sequences[s].slice(0, prefill), 0, table, null);
    await ctx.step(b);
    seqs.forEach((_, i) => got[i].set(b.outLogits!.subarray(i * prefill * 512, (i + 1) * prefill * 512)));
    // Then one token per step, each sequence until its end, crossing block boundaries.
    for (let pos = prefill; pos < g.sequences[2].length; pos++) {
      b.clear(LogitsMode.last);
      const live = seqs.filter(({ s }) => pos < g.sequences[s].length);
      for (const { s, table } of live) b.addSequence([g.sequences[s][pos]], pos, table, null);
      await ctx.step(b);
      live.forEach((q, row) => got[seqs.indexOf(q)].set(b.logitsRow(row), pos * 512));
    }
    seqs.forEach(({ s }, i) => {
      const diff = maxAbsDiff(got[i], goldenLogits(g, s));
      assert(diff <= 1e-4, `sequence ${s} over blocks ${seqs[i].table}: max abs diff ${diff}`);
    });
  } finally {
    close();
  }
});

// The pool's workers are started with the context and live as long as it does: every step reuses them.
Deno.test({
  name: "native: the thread pool is persistent: threads - 1 workers per context, the same ones every step",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    // The pool's workers by their name: the runtime may start threads of its own at any time.
    const comm = (tid: string) => {
      try {
        return Deno.readTextFileSync(`/proc/self/task/${tid}/comm`).trim();
      } catch {
        return ""; // the thread ended meanwhile
      }
    };
    const tids = () =>
      new Set(
        [...Deno.readDirSync("/proc/self/task")].map((e) => e.name).filter((t) => comm(t) === "hearth-pool"),
      );
    const { description: d } = await describeModel(DIR);
    const model = await NativeModel.load(d, "auto");
    try {
      const b = new StepBatch({ ...OPTIONS, threads: 4 }, 512);
      const step = async (ctx: NativeContext, n: number) => {
        for (let i = 0; i < n; i++) {
          b.clear(LogitsMode.last);
          b.addSequence([1, 2, 3, 4, 5, 6, 7, 8], 0, [0], neutral());
          await ctx.step(b);
        }
      };
      const before = tids();
      const ctx = await NativeContext.create(model, { ...OPTIONS, threads: 4 });
      let workers: string[];
      try {
        workers = [...tids()].filter((t) => !before.has(t));
        assertEquals(workers.length, 3, "threads 4: the caller's thread and 3 workers");
        await step(ctx, 20);
        const alive = tids();
        assert(workers.every((t) => alive.has(t)), "after 20 steps the same 3 workers are running");
      } finally {
        ctx.free();
      }
      const after = tids();
      assert(workers.every((t) => !after.has(t)), "freeing the context joined its workers");
    } finally {
      model.free();
    }
  },
});

const OPTIONS = {
  threads: 1,
  kvBlockSize: 16,
  kvNumBlocks: 4,
  maxBatchTokens: 16,
  maxBatchSeqs: 1,
  maxBlocksPerSeq: 4,
};

function neutral() {
  return sequenceSampling({ seed: 1n });
}

// Every kernel path this CPU has must reproduce the goldens: run the golden logits test under each.
Deno.test("native: every instruction-set path (c, avx2, avx512, amx) matches the goldens", async () => {
  const best = await cpuIsa();
  const paths = best === "avx512" ? ["c", "avx2", "avx512"] : best === "avx2" ? ["c", "avx2"] : ["c"];
  if (isaNames().includes("amx")) paths.push("amx"); // the quantized kernels' AMX tiles
  for (const isa of paths) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "-A",
        "--filter",
        "/golden logits: (llama|qwen3-hd32|mistral-sw)/",
        `${ROOT}test/engine/golden_test.ts`,
      ],
      env: { HEARTH_ISA: isa, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert(out.success, `HEARTH_ISA=${isa}:\n${text}`);
    assertEquals(/ok \| (\d+) passed/.exec(text)?.[1], "6", `HEARTH_ISA=${isa} ran all six: ${text}`);
  }
});
