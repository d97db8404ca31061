/**
 * The Engine end to end on fixture models: batching does not change tokens, seeded sampling repeats,
 * cancellation frees the cache, bad requests are errors.
 */
import { assert, assertEquals, assertNotEquals, assertRejects, assertStringIncludes } from "../assert.ts";
import { Engine } from "../../src/engine/engine.ts";
import { EngineError, type GeneratedToken, type GenerateParams } from "../../src/engine/types.ts";
import { ROOT } from "./fixtures.ts";

const MODEL = `${ROOT}test/fixtures/models/llama-f32`;
const PROMPTS = [
  [5, 17, 200, 33],
  [400, 1, 2, 3, 99, 123, 77, 12, 9, 250, 301, 44, 18],
  [7],
  Array.from({ length: 37 }, (_, i) => (i * 37 + 11) % 500 + 6),
];

async function collect(
  engine: Engine,
  prompt: number[],
  params: Partial<GenerateParams>,
): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  for await (const t of engine.generate(prompt, params)) out.push(t);
  return out;
}

const ids = (ts: GeneratedToken[]) => ts.map((t) => t.id);

Deno.test("four sequences of different lengths batched together give the same tokens as each alone", async () => {
  const engine = await Engine.load(MODEL, { threads: 2 });
  try {
    const params = { temperature: 0, repetitionPenalty: 1, maxTokens: 24, ignoreEos: true };
    const alone = [];
    const steps0 = engine.stats().steps;
    for (const p of PROMPTS) alone.push(ids(await collect(engine, p, params)));
    const stepsAlone = engine.stats().steps - steps0;
    assertEquals(stepsAlone, 4 * 24, "alone: one prefill step and 23 decode steps each");
    // All at once: the scheduler puts their prefills and decodes into shared steps.
    const together = await Promise.all(PROMPTS.map((p) => collect(engine, p, params)));
    const stepsTogether = engine.stats().steps - steps0 - stepsAlone;
    assertEquals(together.map(ids), alone);
    for (const t of together) assertEquals(t.length, 24);
    // They really shared steps: 24 if all four prefill in the first one, never anywhere near 96.
    assert(stepsTogether <= 24 + 3, `together took ${stepsTogether} steps; alone ${stepsAlone}`);
  } finally {
    await engine.close();
  }
});

Deno.test("a prompt arriving while another request decodes is prefilled in paced chunks, same tokens", async () => {
  // A target far below a token's time: beside a decoding sequence every step carries the least chunk.
  // No prefix reuse: the second run of the long prompt computes all of it.
  const engine = await Engine.load(MODEL, { threads: 2, prefillChunkMs: 1e-6, prefixCaching: false });
  try {
    const params = { temperature: 0, repetitionPenalty: 1, maxTokens: 24, ignoreEos: true };
    const long = Array.from({ length: 100 }, (_, i) => (i * 53 + 7) % 500 + 6);
    const longAlone = ids(await collect(engine, long, params)); // its 100-token step measures the pace
    const shortAlone = ids(await collect(engine, PROMPTS[1], params));
    const steps0 = engine.stats().steps;
    let arrived: Promise<GeneratedToken[]> | null = null;
    const short: GeneratedToken[] = [];
    for await (const t of engine.generate(PROMPTS[1], params)) {
      short.push(t);
      arrived ??= collect(engine, long, params); // joins while the short one decodes
    }
    assertEquals(ids(short), shortAlone);
    assertEquals(ids(await arrived!), longAlone);
    // 100 prompt tokens beside a decode take ceil(100 / 16) = 7 steps instead of 1.
    const steps = engine.stats().steps - steps0;
    assert(steps >= 24 + 6, `${steps} steps: the long prompt was not prefilled in chunks`);
    assertEquals(engine.stats().pacedSteps, 6, "ceil(100 / 16) - 1 steps used all of the limit");
    assert(engine.stats().prefillMsPerToken > 0);
  } finally {
    await engine.close();
  }
});

Deno.test("step and between-step time are counted while busy, not while idle", async () => {
  const engine = await Engine.load(MODEL, { threads: 2 });
  try {
    const params = { temperature: 0, maxTokens: 12, ignoreEos: true };
    await collect(engine, PROMPTS[0], params);
    const first = engine.stats();
    await new Promise((r) => setTimeout(r, 300)); // idle: no step runs, nothing is between steps
    await collect(engine, PROMPTS[1], params);
    const second = engine.stats();
    assert(first.stepSeconds > 0 && first.betweenStepsSeconds > 0, JSON.stringify(first));
    const between = second.betweenStepsSeconds - first.betweenStepsSeconds;
    assert(between > 0 && between < 0.3, `between steps ${between} s across 0.3 s of idle`);
    assert(second.stepSeconds > first.stepSeconds);
    // Short decode steps turn the event loop on the JS thread (step_placement.ts): its own CPU time there
    // is counted, never more than the turns' wall time.
    assert(second.turnSeconds > 0, JSON.stringify(second));
    if (Deno.build.os === "linux") {
      assert(second.turnCpuSeconds > 0, JSON.stringify(second));
      assert(second.turnCpuSeconds <= second.turnSeconds + 0.002, JSON.stringify(second));
    }
  } finally {
    await engine.close();
  }
});

Deno.test("a seeded sampled run repeats exactly, alone or beside other requests", async () => {
  const engine = await Engine.load(MODEL, { threads: 2 });
  try {
    const params = { temperature: 0.9, topP: 0.95, topK: 50, seed: 1234, maxTokens: 32, ignoreEos: true };
    const first = ids(await collect(engine, PROMPTS[1], params));
    const second = ids(await collect(engine, PROMPTS[1], params));
    assertEquals(second, first);
    const crowd = await Promise.all([
      collect(engine, PROMPTS[1], params),
      ...PROMPTS.map((p, i) => collect(engine, p, { ...params, seed: 99 + i })),
    ]);
    assertEquals(ids(crowd[0]), first, "same seed beside 4 other sequences");
    const other = ids(await collect(engine, PROMPTS[1], { ...params, seed: 4321 }));
    assertNotEquals(other, first, "another seed gives another sample");
  } finally {
    await engine.close();
  }
});

Deno.test("sampling: top_k 1 is greedy; a banned token never appears; min_tokens holds EOS back", async () => {
  const engine = await Engine.load(MODEL, { threads: 1 });
  try {
    const greedy = ids(await collect(engine, PROMPTS[0], { temperature: 0, maxTokens: 16, ignoreEos: true }));
    const topk1 = ids(
      await collect(engine, PROMPTS[0], {
        temperature: 1.5,
        topK: 1,
        seed: 7,
        maxTokens: 16,
        ignoreEos: true,
      }),
    );
    assertEquals(topk1, greedy);
    const banned = greedy[0];
    const biased = ids(
      await collect(engine, PROMPTS[0], {
        temperature: 0,
        maxTokens: 16,
        ignoreEos: true,
        logitBias: new Map([[banned, -Infinity]]),
      }),
    );
    assert(!biased.includes(banned), `token ${banned} was banned`);
    // Make EOS (id 2) the certain choice, then ask for at least 5 tokens first.
    const eosFirst = await collect(engine, PROMPTS[0], {
      temperature: 0,
      maxTokens: 16,
      logitBias: new Map([[2, 100]]),
    });
    assertEquals(eosFirst.length, 1);
    assertEquals(eosFirst[0].finishReason, "stop");
    assert(eosFirst[0].isStop);
    const held = await collect(engine, PROMPTS[0], {
      temperature: 0,
      maxTokens: 16,
      minTokens: 5,
      logitBias: new Map([[2, 100]]),
    });
    assertEquals(held.length, 6);
    assertEquals(held[5].id, 2);
    assertEquals(held[5].finishReason, "stop");
  } finally {
    await engine.close();
  }
});

Deno.test("logprobs: the sampled token's and the top alternatives, as log-probabilities", async () => {
  const engine = await Engine.load(MODEL, { threads: 1 });
  try {
    const out = await collect(engine, PROMPTS[1], {
      temperature: 0,
      maxTokens: 4,
      topLogprobs: 5,
      ignoreEos: true,
    });
    for (const t of out) {
      assert(t.logprob !== undefined && t.logprob <= 0);
      assertEquals(t.topLogprobs!.length, 5);
      assertEquals(t.topLogprobs![0].id, t.id, "greedy picks the most likely token");
      assert(Math.abs(t.topLogprobs![0].logprob - t.logprob!) < 1e-6);
      for (let i = 1; i < 5; i++) assert(t.topLogprobs![i].logprob <= t.topLogprobs![i - 1].logprob);
    }
  } finally {
    await engine.close();
  }
});

Deno.test("length: max tokens and the end of the context both finish with 'length'", async () => {
  const engine = await Engine.load(MODEL, { threads: 1, maxModelLen: 32 });
  try {
    const out = await collect(engine, PROMPTS[0], { temperature: 0, maxTokens: 3, ignoreEos: true });
    assertEquals(out.map((t) => t.finishReason), [null, null, "length"]);
    const long = await collect(engine, PROMPTS[1], { temperature: 0, maxTokens: 1000, ignoreEos: true });
    assertEquals(long.length, 32 - PROMPTS[1].length);
    assertEquals(long.at(-1)!.finishReason, "length");
  } finally {
    await engine.close();
  }
});

Deno.test("cancelling (break, abort) frees every KV block; many requests leave the cache empty", async () => {
  const engine = await Engine.load(MODEL, { threads: 1, kvCacheTokens: 1024 });
  try {
    const all = engine.freeKvBlocks;
    for await (const _ of engine.generate(PROMPTS[3], { maxTokens: 50, ignoreEos: true })) break;
    const ac = new AbortController();
    let n = 0;
    for await (const _ of engine.generate(PROMPTS[1], { maxTokens: 50, ignoreEos: true }, ac.signal)) {
      if (++n === 3) ac.abort();
    }
    assertEquals(n, 3);
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        let k = 0;
        for await (const _ of engine.generate(PROMPTS[i % 4], { maxTokens: 20, ignoreEos: true, seed: i })) {
          if (++k === (i % 7) + 1 && i % 2 === 0) break;
        }
      }),
    );
    // One more request makes the loop run a step after the last cancellation, reaping it.
    await collect(engine, PROMPTS[2], { maxTokens: 1 });
    assertEquals(engine.freeKvBlocks, all);
  } finally {
    await engine.close();
  }
});

Deno.test("a KV cache too small for every request at once preempts and still gives the same tokens", async () => {
  // 6 blocks of 16: each sequence needs up to 3 blocks (37 + 10 tokens), so four cannot all run at once.
  const engine = await Engine.load(MODEL, {
    threads: 1,
    kvCacheTokens: 96,
    kvBlockSize: 16,
    maxModelLen: 96,
  });
  try {
    const params = { temperature: 0, repetitionPenalty: 1, maxTokens: 10, ignoreEos: true };
    const alone = [];
    for (const p of PROMPTS) alone.push(ids(await collect(engine, p, params)));
    const together = await Promise.all([...PROMPTS, ...PROMPTS].map((p) => collect(engine, p, params)));
    assertEquals(together.map(ids), [...alone, ...alone]);
    assert(engine.preemptions > 0, "the cache was too small: some sequence must have been preempted");
    assertEquals(engine.freeKvBlocks, 6);
  } finally {
    await engine.close();
  }
});

Deno.test("bad requests are EngineErrors naming the field; the prompt limit names both numbers", async () => {
  const engine = await Engine.load(MODEL, { threads: 1, maxModelLen: 32 });
  try {
    const run = (prompt: number[], params: Partial<GenerateParams>) => () => collect(engine, prompt, params);
    await assertRejects(run([], {}), EngineError, "prompt");
    await assertRejects(run([600], {}), EngineError, "token id 600");
    await assertRejects(run([1.5], {}), EngineError, "prompt");
    await assertRejects(run([1], { temperature: -1 }), EngineError, "temperature");
    await assertRejects(run([1], { topP: 0 }), EngineError, "topP");
    await assertRejects(run([1], { maxTokens: 0 }), EngineError, "maxTokens");
    await assertRejects(run([1], { topLogprobs: 21 }), EngineError, "topLogprobs");
    const e = await assertRejects(run(Array(40).fill(5), {}), EngineError, "40 tokens");
    assert(e.message.includes("32"), e.message);
    assertEquals((e as EngineError).code, "context_length_exceeded");
    // Still serving afterwards.
    assertEquals((await collect(engine, [5, 6], { maxTokens: 2, ignoreEos: true })).length, 2);
  } finally {
    await engine.close();
  }
});

Deno.test("prefix reuse: a shared system prompt is computed once, and answers do not change", async () => {
  const system = Array.from({ length: 40 }, (_, i) => (i * 13 + 7) % 500 + 6); // 2 full blocks of 16
  const prompts = [[11, 12, 13], [20, 21], [30], [40, 41, 42, 43]].map((q) => [...system, ...q]);
  const params = { temperature: 0, repetitionPenalty: 1, maxTokens: 8, ignoreEos: true };
  const plain = await Engine.load(MODEL, { threads: 1, prefixCaching: false, kvBlockSize: 16 });
  const cached = await Engine.load(MODEL, { threads: 1, kvBlockSize: 16 });
  try {
    for (const p of prompts) {
      assertEquals(ids(await collect(cached, p, params)), ids(await collect(plain, p, params)));
    }
    const stats = cached.prefixStats;
    assertEquals(stats.hitTokens, 3 * 32, "every prompt after the first found the system prompt's 2 blocks");
    assertEquals(plain.prefixStats.hitTokens, 0);
    assert(stats.hitRate > 0.5);
    // Concurrent requests with the same prefix agree too.
    const together = await Promise.all(prompts.map((p) => collect(cached, p, params)));
    for (let i = 0; i < prompts.length; i++) {
      assertEquals(ids(together[i]), ids(await collect(plain, prompts[i], params)));
    }
  } finally {
    await plain.close();
    await cached.close();
  }
});

Deno.test("backpressure: past the waiting limit generate() fails fast with 'overloaded'", async () => {
  const engine = await Engine.load(MODEL, { threads: 1, maxWaiting: 2, maxBatchSeqs: 1 });
  try {
    const runs = Array.from(
      { length: 6 },
      () => collect(engine, PROMPTS[0], { maxTokens: 4, ignoreEos: true }).then(() => "ok", (e) => e),
    );
    const results = await Promise.all(runs);
    const overloaded = results.filter((r) => r instanceof EngineError && r.code === "overloaded");
    assert(overloaded.length >= 1, `some were refused: ${results}`);
    assert(results.filter((r) => r === "ok").length >= 2);
    assertStringIncludes((overloaded[0] as Error).message, "capacity");
  } finally {
    await engine.close();
  }
});

Deno.test("back-to-back requests each run: the step loop restarts after running out of work", async () => {
  const engine = await Engine.load(MODEL, { threads: 1 });
  try {
    for (let i = 0; i < 20; i++) {
      // The first request's last token reaches its consumer just as the loop finds no more work; the
      // next request is added right then.
      const first = engine.generate(PROMPTS[i % 4], { maxTokens: 1, ignoreEos: true });
      const last = await first.next();
      assert(!last.done && last.value.finishReason === "length");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = collect(engine, PROMPTS[(i + 1) % 4], { maxTokens: 2, ignoreEos: true });
      const hung = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), 5000)));
      const outcome = await Promise.race([next, hung]);
      clearTimeout(timer);
      assert(outcome !== "hung", `request ${i} never ran: the step loop ended without seeing it`);
      await first.return(undefined);
    }
  } finally {
    await engine.close();
  }
});

Deno.test("a KV block size outside 1..1024 tokens is refused before the weights are loaded", async () => {
  for (const kvBlockSize of [0, 1.5, 2048]) {
    await assertRejects(() => Engine.load(MODEL, { threads: 1, kvBlockSize }), RangeError, "KV block size");
  }
});

Deno.test("weights: copied into memory by default when small, mapped with weightsInMemory false, same tokens", async () => {
  const copied = await Engine.load(MODEL, { threads: 1 });
  const mapped = await Engine.load(MODEL, { threads: 1, weightsInMemory: false });
  try {
    assertStringIncludes(copied.info.weights!, "copied into memory");
    assertStringIncludes(mapped.info.weights!, "mapped files");
    // The f32 fixture is used as stored: the copy holds its matrices, the mapped model almost nothing.
    assert(
      copied.memory().ownedWeights > mapped.memory().ownedWeights + copied.memory().mappedFiles / 2,
      `owned ${copied.memory().ownedWeights} / ${mapped.memory().ownedWeights} of ${copied.memory().mappedFiles}`,
    );
    const params = { temperature: 0, repetitionPenalty: 1, maxTokens: 16, ignoreEos: true };
    assertEquals(
      ids(await collect(copied, PROMPTS[1], params)),
      ids(await collect(mapped, PROMPTS[1], params)),
    );
  } finally {
    await copied.close();
    await mapped.close();
  }
});
