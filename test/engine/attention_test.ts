/**
 * Attention over long contexts (kernels/cpu/forward_llama.c): the keys are visited in segments whose
 * online-softmax results are folded in order, and a single decoding token runs its segments as separate
 * tasks merged afterwards. Each row's result must depend only on its own query, position and cache:
 *
 * - a 700-token sequence fed at once, or in chunks of many sizes with single-token decodes across segment
 *   boundaries, beside another sequence or alone, gives the very same logits (bit for bit);
 * - with one big segment (a much longer maximum context) and KV blocks that do not divide the key chunks,
 *   it gives the same logits within float rounding (the folding of segments is right);
 * - more split decodes in one step than the context splits (HEARTH_ATT_MAX_SPLIT: the rest run their
 *   segments in one task each) give each sequence the bits it gets decoding alone.
 *
 * The fixtures are tiny (2 layers, dim 64) with their maximum context raised; GQA (4 query heads on 2 kv
 * heads), MQA (4 on 1), a sliding window of 8, and head size 32.
 */
import { assert, assertEquals } from "../assert.ts";
import { describeModel } from "../../src/model/loader.ts";
import { LogitsMode, NativeContext, NativeModel, StepBatch } from "../../src/native/hearth.ts";
import { maxAbsDiff, ROOT } from "./fixtures.ts";

const N = 700;
const TOKENS = Array.from({ length: N }, (_, i) => (i * 131 + 7) % 509 + 1);

async function open(dir: string, maxSeqLen: number, kvBlockSize: number, maxBatchSeqs = 2) {
  const { description } = await describeModel(`${ROOT}test/fixtures/models/${dir}`);
  description.config = { ...description.config, maxSeqLen };
  const model = await NativeModel.load(description, "auto");
  const blocksPerSeq = Math.ceil(maxSeqLen / kvBlockSize);
  const ctx = await NativeContext.create(model, {
    threads: 2,
    kvBlockSize,
    kvNumBlocks: maxBatchSeqs * Math.ceil(N / kvBlockSize),
    maxBatchTokens: N,
    maxBatchSeqs,
    maxBlocksPerSeq: blocksPerSeq,
  });
  const vocab = description.config.vocabSize;
  const per = Math.ceil(N / kvBlockSize);
  const tables = Array.from(
    { length: maxBatchSeqs },
    (_, s) => Array.from({ length: per }, (_, i) => s * per + i),
  );
  return {
    ctx,
    vocab,
    tables,
    close: () => {
      ctx.free();
      model.free();
    },
  };
}

/** Logits of every token, fed in steps of the given sizes; `beside` adds a second sequence's prefill to
 * the step that starts at that position. */
async function logitsInSteps(
  o: Awaited<ReturnType<typeof open>>,
  steps: number[],
  beside = -1,
): Promise<Float32Array> {
  const out = new Float32Array(N * o.vocab);
  const b = new StepBatch(o.ctx.options, o.vocab);
  let pos = 0;
  for (const n of steps) {
    b.clear(LogitsMode.all);
    b.addSequence(TOKENS.slice(pos, pos + n), pos, o.tables[0], null);
    if (pos === beside) b.addSequence(TOKENS.slice(0, N - n), 0, o.tables[1], null);
    await o.ctx.step(b);
    out.set(b.outLogits!.subarray(0, n * o.vocab), pos * o.vocab);
    pos += n;
  }
  assertEquals(pos, N);
  return out;
}

for (const dir of ["llama-f32", "llama-linear-f32", "mistral-sw-f32", "qwen3-hd32-f32"]) {
  Deno.test(`attention over 700 tokens (${dir}): any chunking, split decodes, batching give the same bits`, async () => {
    const o = await open(dir, 1024, 16); // segments of 64 keys (context.c)
    try {
      const whole = await logitsInSteps(o, [N]);
      // Decodes at 255, 256, 257 cross a segment boundary; the last 20 are split decodes of 11 segments,
      // the last one beside another sequence's prefill.
      const steps = [1, 254, 1, 1, 1, 190, 63, 17, 152, ...Array(20).fill(1)];
      const chunked = await logitsInSteps(o, steps, N - 1);
      let differ = 0;
      for (let i = 0; i < whole.length; i++) if (!Object.is(whole[i], chunked[i])) differ++;
      assertEquals(differ, 0, "logits that differ between one step and many");

      // One segment for everything (a context of 256 segments of 1024 keys), and blocks of 40 positions
      // (not a divisor of the 64-key chunks).
      const p = await open(dir, 262144, 40);
      try {
        const single = await logitsInSteps(p, [N]);
        const scale = whole.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const diff = maxAbsDiff(whole, single);
        assert(
          diff <= 1e-5 * Math.max(1, scale),
          `one segment vs eleven: max diff ${diff} (logits up to ${scale})`,
        );
      } finally {
        p.close();
      }
    } finally {
      o.close();
    }
  });
}

Deno.test("attention: 20 split decodes in one step (past the 16 a step splits) give the bits of each alone", async () => {
  const SEQS = 20;
  const o = await open("llama-f32", 1024, 16, SEQS);
  try {
    const b = new StepBatch(o.ctx.options, o.vocab);
    // Sequence s: a prompt of 150 + 7 s tokens (3 to 5 segments), then one decode.
    const len = (s: number) => 150 + 7 * s;
    for (let s = 0; s < SEQS; s++) {
      b.clear(LogitsMode.none);
      b.addSequence(TOKENS.slice(0, len(s)), 0, o.tables[s], null);
      await o.ctx.step(b);
    }
    b.clear(LogitsMode.all);
    for (let s = 0; s < SEQS; s++) b.addSequence([TOKENS[len(s)]], len(s), o.tables[s], null);
    await o.ctx.step(b);
    const together = b.outLogits!.slice(0, SEQS * o.vocab);
    for (let s = 0; s < SEQS; s++) {
      b.clear(LogitsMode.all);
      b.addSequence([TOKENS[len(s)]], len(s), o.tables[s], null);
      await o.ctx.step(b);
      const alone = b.outLogits!.subarray(0, o.vocab);
      let differ = 0;
      for (let i = 0; i < o.vocab; i++) if (!Object.is(alone[i], together[s * o.vocab + i])) differ++;
      assertEquals(differ, 0, `sequence ${s}: logits that differ between its decode alone and among ${SEQS}`);
    }
  } finally {
    o.close();
  }
});
