/**
 * Our forward pass against transformers' on every fixture architecture: logits at every position of
 * three sequences (alone and all in one batch), and 32-token greedy continuations.
 *
 * Bounds: 1e-4 max abs for float32 checkpoints, and for bf16/f16 checkpoints compared with
 * transformers running the same weights upcast to float32 (we compute in float32 with 16-bit weights,
 * so the only difference is summation order). Against transformers computing natively in bf16/f16 the
 * difference is dominated by *its* rounding of activations to 16 bits: we check it stays within 1.5x
 * of the gap the oracle script measured between its own native and float32 runs (bf16 about 0.24,
 * f16 about 0.03 on these fixtures).
 */
import { assert, assertEquals } from "../assert.ts";
import { LogitsMode, StepBatch } from "../../src/native/hearth.ts";
import { Engine } from "../../src/engine/engine.ts";
import { goldenLogits, goldenNames, maxAbsDiff, openFixture, readGolden, ROOT } from "./fixtures.ts";

const F32_BOUND = 1e-4;

for (const name of goldenNames()) {
  const g = readGolden(name);

  Deno.test(`golden logits: ${name} (each sequence alone, then all three in one batch)`, async () => {
    const { ctx, close } = await openFixture(g.model_dir);
    try {
      const batch = new StepBatch(ctx.options, g.vocab_size);
      const blocksFor = (n: number, base: number) =>
        Array.from({ length: Math.ceil(n / 16) }, (_, i) => base + i);
      // Alone.
      for (let s = 0; s < g.sequences.length; s++) {
        const seq = g.sequences[s];
        batch.clear(LogitsMode.all);
        batch.addSequence(seq, 0, blocksFor(seq.length, 0), null);
        await ctx.step(batch);
        const diff = maxAbsDiff(batch.outLogits!.subarray(0, seq.length * g.vocab_size), goldenLogits(g, s));
        assert(diff <= F32_BOUND, `${name} sequence ${s}: max abs diff ${diff} > ${F32_BOUND}`);
        if (g.logits_native) {
          const native = maxAbsDiff(
            batch.outLogits!.subarray(0, seq.length * g.vocab_size),
            goldenLogits(g, s, true),
          );
          const bound = 1.5 * g.native_vs_f32_max_abs_diff!;
          assert(native <= bound, `${name} sequence ${s}: vs native ${native} > ${bound}`);
        }
      }
      // Together: different lengths, separate block tables, one step.
      batch.clear(LogitsMode.all);
      let base = 0;
      for (const seq of g.sequences) {
        batch.addSequence(seq, 0, blocksFor(seq.length, base), null);
        base += Math.ceil(seq.length / 16);
      }
      await ctx.step(batch);
      let row = 0;
      for (let s = 0; s < g.sequences.length; s++) {
        const n = g.sequences[s].length;
        const got = batch.outLogits!.subarray(row * g.vocab_size, (row + n) * g.vocab_size);
        const diff = maxAbsDiff(got, goldenLogits(g, s));
        assert(diff <= F32_BOUND, `${name} batched sequence ${s}: max abs diff ${diff}`);
        row += n;
      }
    } finally {
      close();
    }
  });

  // Pure greedy: the request overrides generation_config.json's sampling defaults (qwen2's has a
  // repetition penalty), as the oracle's generate(do_sample=False) call had none.
  Deno.test(`golden greedy continuation: ${name} (32 tokens, token for token)`, async () => {
    const engine = await Engine.load(`${ROOT}${g.model_dir}`, { threads: 2 });
    try {
      for (const gr of g.greedy) {
        const prompt = g.sequences[gr.sequence_index];
        const out: number[] = [];
        for await (
          const t of engine.generate(prompt, {
            temperature: 0,
            repetitionPenalty: 1,
            maxTokens: 32,
            ignoreEos: true,
          })
        ) {
          out.push(t.id);
        }
        assertEquals(out, gr.new_tokens, `${name} greedy from sequence ${gr.sequence_index}`);
      }
    } finally {
      await engine.close();
    }
  });
}
