/**
 * Attention over long contexts (kernels/cpu/forward_llama.c): the keys are visited in segments whose
 * online-softmax results are folded in order, and a single decoding token runs its segments as separate
 * tasks merged afterwards. Each row's result must depend only on its own query, position and cache:
 *
 * - a 700-token sequence fed at once, or in chunks of many sizes with single-token decodes across segment
 *   boundaries, beside another sequence or alone, gives the very same logits (bit for bit);
 * - with one big segment (a longer maximum context) and KV blocks that do not divide the key chunks, it
 *   gives the same logits within float rounding (the folding of segments is right).
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

async function open(dir: string, maxSeqLen: number, kvBlockSize: number) {
  const { description } = await describeModel(`${ROOT}test/fixtures/models/${dir}`);
  description.config = { ...description.config, maxSeqLen };
  const model = await NativeModel.load(description, "auto");
  const blocksPerSeq = Math.ceil(maxSeqLen / kvBlockSize);
  const ctx = await NativeContext.create(model, {
    threads: 2,
    kvBlockSize,
    kvNumBlocks: 2 * Math.ceil(N / kvBlockSize),
    maxBatchTokens: N,
    maxBatchSeqs: 2,
    maxBlocksPerSeq: blocksPerSeq,
  });
  const vocab = description.config.vocabSize;
  const per = Math.ceil(N / kvBlockSize);
  const tables = [0, 1].map((s) => Array.from({ length: per }, (_, i) => s * per + i));
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
    const o = await open(dir, 1024, 16); // segments of 256 keys
    try {
      const whole = await logitsInSteps(o, [N]);
      // Decodes at 255, 256, 257 cross a segment boundary; the last 20 are split decodes of 3 segments,
      // the last one beside another sequence's prefill.
      const steps = [1, 254, 1, 1, 1, 190, 63, 17, 152, ...Array(20).fill(1)];
      const chunked = await logitsInSteps(o, steps, N - 1);
      let differ = 0;
      for (let i = 0; i < whole.length; i++) if (!Object.is(whole[i], chunked[i])) differ++;
      assertEquals(differ, 0, "logits that differ between one step and many");

      // One segment for everything, and blocks of 40 positions (not a divisor of the 64-key chunks).
      const p = await open(dir, 16384, 40);
      try {
        const single = await logitsInSteps(p, [N]);
        const scale = whole.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const diff = maxAbsDiff(whole, single);
        assert(
          diff <= 1e-5 * Math.max(1, scale),
          `one segment vs three: max diff ${diff} (logits up to ${scale})`,
        );
      } finally {
        p.close();
      }
    } finally {
      o.close();
    }
  });
}
