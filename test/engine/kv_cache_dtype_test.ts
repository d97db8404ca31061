/**
 * The f16 KV cache: what "auto" picks, what it saves, and that it changes only the rounding of what is
 * stored: logits stay near the float32 goldens, batching and seeded sampling keep their bits.
 */
import { assert, assertEquals } from "../assert.ts";
import { Engine, resolveKvCacheDtype } from "../../src/engine/engine.ts";
import type { GeneratedToken, GenerateParams } from "../../src/engine/types.ts";
import { LogitsMode, StepBatch } from "../../src/native/hearth.ts";
import { goldenLogits, goldenNames, maxAbsDiff, openFixture, readGolden, ROOT } from "./fixtures.ts";

const MODEL = `${ROOT}test/fixtures/models/llama-f32`;

Deno.test("KV cache dtype: auto is float16 for quantized weights on the CPU, float32 otherwise", () => {
  const cpu = { kind: "cpu" } as const, cuda = { kind: "cuda", index: 0 } as const;
  for (const w of ["q8_0", "q4_0", "q4_1", "q4_k", "q6_k"] as const) {
    assertEquals(resolveKvCacheDtype("auto", cpu, w), "float16", w);
    assertEquals(resolveKvCacheDtype("auto", cuda, w), "float32", `${w} on cuda`);
  }
  for (const w of ["f32", "f16", "bf16"] as const) {
    assertEquals(resolveKvCacheDtype("auto", cpu, w), "float32", w);
  }
  assertEquals(resolveKvCacheDtype("float16", cpu, "f32"), "float16");
  assertEquals(resolveKvCacheDtype("float32", cpu, "q8_0"), "float32");
});

// The bound: how far rounding every weight of llama-f32 to f16 moves its logits (the llama-f16 fixture's
// goldens against llama-f32's, both transformers in float32; about 0.02). Rounding only the cached keys
// and values to f16 must move them less (about 0.007 to 0.014 on these fixtures).
const F16_CACHE_BOUND = (() => {
  const a = readGolden("llama-f32"), b = readGolden("llama-f16");
  return Math.max(...a.sequences.map((_, s) => maxAbsDiff(goldenLogits(a, s), goldenLogits(b, s))));
})();

for (const name of goldenNames().filter((n) => n.endsWith("-f32"))) {
  Deno.test(`f16 KV cache: ${name} logits closer to the float32 goldens than f16 weights are`, async () => {
    const g = readGolden(name);
    const { ctx, close } = await openFixture(g.model_dir, { kvDtype: "float16" });
    try {
      const batch = new StepBatch(ctx.options, g.vocab_size);
      let worst = 0;
      for (let s = 0; s < g.sequences.length; s++) {
        const seq = g.sequences[s];
        batch.clear(LogitsMode.all);
        batch.addSequence(seq, 0, Array.from({ length: Math.ceil(seq.length / 16) }, (_, i) => i), null);
        await ctx.step(batch);
        const want = goldenLogits(g, s);
        worst = Math.max(worst, maxAbsDiff(batch.outLogits!.subarray(0, want.length), want));
      }
      assert(worst > 0, "the f16 cache rounds something"); // it really is not the float32 path
      assert(worst <= F16_CACHE_BOUND, `${name}: max abs diff ${worst} > ${F16_CACHE_BOUND}`);
    } finally {
      close();
    }
  });
}

async function collect(engine: Engine, prompt: number[], params: Partial<GenerateParams>) {
  const out: GeneratedToken[] = [];
  for await (const t of engine.generate(prompt, params)) out.push(t);
  return out.map((t) => t.id);
}

Deno.test("f16 KV cache: half the memory; batching and seeded sampling give the tokens of a run alone", async () => {
  const f32 = await Engine.load(MODEL, { threads: 2, kvCacheTokens: 1024, kvCacheDtype: "float32" });
  const f16 = await Engine.load(MODEL, { threads: 2, kvCacheTokens: 1024, kvCacheDtype: "float16" });
  try {
    assertEquals(f16.info.kvCacheDtype, "float16");
    assertEquals(f32.info.kvCacheDtype, "float32");
    assertEquals(f16.memory().kvCache * 2, f32.memory().kvCache);
    const prompts = [
      [5, 17, 200, 33],
      [400, 1, 2, 3, 99, 123, 77, 12, 9],
      [7],
      Array.from({ length: 37 }, (_, i) => i + 6),
    ];
    const greedy = { temperature: 0, maxTokens: 20, ignoreEos: true };
    const alone = [];
    for (const p of prompts) alone.push(await collect(f16, p, greedy));
    assertEquals(await Promise.all(prompts.map((p) => collect(f16, p, greedy))), alone);
    const seeded = { temperature: 0.9, topP: 0.95, seed: 77, maxTokens: 24, ignoreEos: true };
    const first = await collect(f16, prompts[1], seeded);
    const crowd = await Promise.all([
      collect(f16, prompts[1], seeded),
      ...prompts.map((p, i) => collect(f16, p, { ...seeded, seed: 5 + i })),
    ]);
    assertEquals(crowd[0], first, "the same seed beside four others");
  } finally {
    await f32.close();
    await f16.close();
  }
});

Deno.test("f16 KV cache: the default for --quantize, and a float32 one on request", async () => {
  const q = await Engine.load(MODEL, { threads: 1, kvCacheTokens: 256, quantize: "q8_0" });
  const q32 = await Engine.load(MODEL, {
    threads: 1,
    kvCacheTokens: 256,
    quantize: "q8_0",
    kvCacheDtype: "float32",
  });
  const plain = await Engine.load(MODEL, { threads: 1, kvCacheTokens: 256 });
  try {
    assertEquals(q.info.kvCacheDtype, "float16");
    assertEquals(q32.info.kvCacheDtype, "float32");
    assertEquals(plain.info.kvCacheDtype, "float32");
    // Both quantized engines still greedy-decode the same opening tokens on this fixture.
    const greedy = { temperature: 0, maxTokens: 4, ignoreEos: true };
    assertEquals(await collect(q, [5, 17, 200, 33], greedy), await collect(q32, [5, 17, 200, 33], greedy));
  } finally {
    await q.close();
    await q32.close();
    await plain.close();
  }
});
