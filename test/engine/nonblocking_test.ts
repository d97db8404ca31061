/**
 * The FFI calls that compute run off the event loop (`nonblocking` in src/native/hearth.ts): while a
 * forward step or the conversion of weights at load works, timers keep firing, so the server keeps
 * answering. A blocking call would hold the JavaScript thread for its whole length and no timer could
 * run before it returned. The exception is a short step (a few decodes), which the engine begins and
 * joins on the JavaScript thread (stepBegin / stepJoin: faster), letting the event loop turn in between.
 */
import { join } from "node:path";
import { assert } from "../assert.ts";
import { describeModel } from "../../src/model/loader.ts";
import { writeSafetensors } from "../../src/model/safetensors_write.ts";
import { hfTensorShapes } from "../../src/model/test_util.ts";
import {
  LogitsMode,
  NativeContext,
  NativeModel,
  sequenceSampling,
  StepBatch,
} from "../../src/native/hearth.ts";
import { Engine } from "../../src/engine/engine.ts";

/** A random-weight Llama big enough that one step takes tens of milliseconds (12M parameters). */
async function randomModel(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hearth-nonblocking-" });
  const config = {
    architectures: ["LlamaForCausalLM"],
    hidden_size: 256,
    intermediate_size: 1024,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 16384,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    hidden_act: "silu",
  };
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
  let s = 12345;
  const tensors = new Map<string, { dtype: string; shape: number[]; data: Float32Array }>();
  for (const [name, shape] of hfTensorShapes("LlamaForCausalLM", config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith("norm.weight")) data.fill(1);
    else {
      for (let i = 0; i < data.length; i++) {
        s = (s * 1664525 + 1013904223) >>> 0;
        data[i] = (s / 2 ** 32 - 0.5) * 0.1;
      }
    }
    tensors.set(name, { dtype: "F32", shape, data });
  }
  await writeSafetensors(join(dir, "model.safetensors"), tensors);
  return dir;
}

/** Runs `work` with a 1 ms interval timer going; how many times it fired before `work` settled. */
async function timerTicksDuring(work: () => Promise<unknown>): Promise<{ ticks: number; ms: number }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const t0 = performance.now();
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return { ticks, ms: performance.now() - t0 };
}

/**
 * The random model loaded in `dtype` (the load timed by timerTicksDuring) with one context of 32 blocks of
 * 16 tokens; runs `fn`, then frees everything.
 */
async function withContext(
  dtype: "auto" | "bf16",
  threads: number,
  fn: (ctx: NativeContext, load: { ticks: number; ms: number }) => Promise<void>,
): Promise<void> {
  const dir = await randomModel();
  try {
    const { description } = await describeModel(dir);
    let model: NativeModel | null = null;
    const load = await timerTicksDuring(async () => {
      model = await NativeModel.load(description, dtype);
    });
    assert(model !== null);
    const m: NativeModel = model;
    try {
      const ctx = await NativeContext.create(m, {
        threads,
        kvBlockSize: 16,
        kvNumBlocks: 32,
        maxBatchTokens: 512,
        maxBatchSeqs: 1,
        maxBlocksPerSeq: 32,
      });
      try {
        await fn(ctx, load);
      } finally {
        ctx.free();
      }
    } finally {
      m.free();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ALL_BLOCKS = Array.from({ length: 32 }, (_, i) => i);

Deno.test("nonblocking: timers fire while weights convert at load and while a forward step runs", async () => {
  // f32 -> bf16 at load: hearth_model_finish converts every weight
  await withContext("bf16", 1, async (ctx, load) => {
    assert(load.ticks > 0, `no timer fired during the ${load.ms.toFixed(1)} ms conversion at load`);
    const batch = new StepBatch(ctx.options, 16384);
    batch.clear(LogitsMode.last);
    const prompt = Array.from({ length: 512 }, (_, i) => (i * 7919) % 16384);
    batch.addSequence(prompt, 0, ALL_BLOCKS, null);
    const step = await timerTicksDuring(() => ctx.step(batch));
    assert(step.ticks > 0, `no timer fired during the ${step.ms.toFixed(1)} ms step`);
    assert(batch.logitsRow(0).every(Number.isFinite), "the step computed finite logits");
  });
});

Deno.test("stepSync: the same bits as a step off the event loop, which it blocks; errors as step's", async () => {
  await withContext("auto", 2, async (ctx) => {
    const batch = new StepBatch(ctx.options, 16384);
    const prompt = Array.from({ length: 300 }, (_, i) => (i * 7919) % 16384);
    const run = async (sync: boolean) => {
      batch.clear(LogitsMode.last);
      batch.addSequence(prompt, 0, ALL_BLOCKS, sequenceSampling({ seed: 5n }));
      const t = await timerTicksDuring(async () => sync ? ctx.stepSync(batch) : await ctx.step(batch));
      return { ticks: t.ticks, logits: Array.from(batch.logitsRow(0)), token: batch.outTokens[0] };
    };
    const off = await run(false), on = await run(true);
    assert(on.logits.every((v, i) => Object.is(v, off.logits[i])), "stepSync changed the logits");
    assert(on.token === off.token, "stepSync sampled another token");
    assert(on.ticks === 0, `a timer fired during a step on the JS thread (${on.ticks})`);
    batch.clear(LogitsMode.none);
    batch.addSequence([1, 2], 600, [0], null); // past the 32 blocks of 16 a sequence may have
    let message = "";
    try {
      ctx.stepSync(batch);
    } catch (e) {
      message = (e as Error).message;
    }
    assert(/block table/.test(message), `expected the batch error, got "${message}"`);
  });
});

for (const threads of [1, 2, 3]) {
  Deno.test(`stepBegin / stepJoin (${threads} threads): timers fire in between, the same bits as stepSync, errors at the join`, async () => {
    await withContext("auto", threads, async (ctx) => {
      const batch = new StepBatch(ctx.options, 16384);
      const prompt = Array.from({ length: 300 }, (_, i) => (i * 7919) % 16384);
      const fill = () => {
        batch.clear(LogitsMode.last);
        batch.addSequence(prompt, 0, ALL_BLOCKS, sequenceSampling({ seed: 5n }));
      };
      fill();
      ctx.stepSync(batch);
      const want = { logits: Array.from(batch.logitsRow(0)), token: batch.outTokens[0] };
      fill();
      ctx.stepBegin(batch);
      let again = "";
      try {
        ctx.stepBegin(batch); // one step at a time per context
      } catch (e) {
        again = (e as Error).message;
      }
      assert(/already running/.test(again), `a second stepBegin: "${again}"`);
      let ticks = 0;
      await new Promise<void>((resolve) => setTimeout(() => (ticks++, resolve()), 2));
      ctx.stepJoin();
      assert(ticks === 1, "the timer did not fire between stepBegin and stepJoin");
      assert(
        batch.logitsRow(0).every((v, i) => Object.is(v, want.logits[i])),
        "begin/join changed the logits",
      );
      assert(batch.outTokens[0] === want.token, "begin/join sampled another token");
      let joinAgain = "";
      try {
        ctx.stepJoin();
      } catch (e) {
        joinAgain = (e as Error).message;
      }
      assert(/no step is in flight/.test(joinAgain), `a second stepJoin: "${joinAgain}"`);
      batch.clear(LogitsMode.none);
      batch.addSequence([1, 2], 600, [0], null); // past the 32 blocks of 16 a sequence may have
      ctx.stepBegin(batch); // the batch is checked on the context's threads: the error comes at the join
      let message = "";
      try {
        ctx.stepJoin();
      } catch (e) {
        message = (e as Error).message;
      }
      assert(/block table/.test(message), `expected the batch error, got "${message}"`);
      fill();
      ctx.stepBegin(batch); // left in flight: free (withContext) joins it before it frees the buffers
    });
  });
}

Deno.test("the engine lets the event loop turn between decode steps it runs on the JS thread", async () => {
  const dir = await randomModel();
  const engine = await Engine.load(dir, { threads: 2, maxModelLen: 256 });
  try {
    const prompt = Array.from({ length: 8 }, (_, i) => 100 + i);
    let tokens = 0;
    const { ticks, ms } = await timerTicksDuring(async () => {
      for await (const _ of engine.generate(prompt, { maxTokens: 60, ignoreEos: true })) tokens++;
    });
    assert(tokens === 60, `${tokens} tokens`);
    // Every step gives the loop a turn; a 1 ms timer fires at least every few steps.
    assert(ticks >= ms / 10, `${ticks} timer ticks in ${ms.toFixed(0)} ms of decoding`);
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});
