import { assert, assertEquals } from "../../test/assert.ts";
import { KvBlockAllocator } from "./kv_allocator.ts";
import { type PlannedSlice, Scheduler } from "./scheduler.ts";
import { Sequence } from "./sequence.ts";
import { DEFAULT_GENERATE_PARAMS } from "./types.ts";

const seq = (prompt: number[], maxTokens = 8) =>
  new Sequence(prompt, DEFAULT_GENERATE_PARAMS, 1n, [], maxTokens);

/** What the engine does after a step: the slices are computed, published, and sampled slices get a token. */
function afterStep(s: Scheduler, plan: PlannedSlice[], next: () => number): void {
  for (const slice of plan) {
    slice.seq.computed += slice.count;
    s.publish(slice.seq);
    if (!slice.sample) continue;
    slice.seq.tokens.push(next());
    if (slice.seq.tokens.length - slice.seq.promptLen >= slice.seq.maxTokens) slice.seq.done = true;
  }
}

/** Steps until nothing is busy; every step must carry something, else the engine would wait forever. */
function drain(s: Scheduler, next: () => number, maxSteps = 100): number {
  let steps = 0;
  while (s.busy) {
    const plan = s.schedule();
    if (!s.busy) break;
    assert(plan.length > 0, `step ${steps}: busy but nothing can run (${s.running.length} running)`);
    afterStep(s, plan, next);
    assert(++steps < maxSteps, "no progress");
  }
  return steps;
}

Deno.test("a waiting sequence that cannot be admitted does not keep the idle prefix blocks it matched", () => {
  // 4 blocks of 4 slots. X leaves [1..8] as two idle cached blocks; A runs in the two fresh ones; B's
  // prompt starts with [1..8] but its ninth token needs a third block that is not there.
  const s = new Scheduler(new KvBlockAllocator(4, 4), {
    maxBatchTokens: 8,
    maxBatchSeqs: 8,
    prefixCaching: true,
  });
  let id = 1000;
  const next = () => id++;
  const x = seq([1, 2, 3, 4, 5, 6, 7, 8], 1);
  s.add(x);
  drain(s, next);
  s.reap();
  assertEquals(s.allocator.freeBlocks, 4);

  const a = seq([100, 101, 102, 103, 104], 8); // grows to 13 tokens: a third block past token 8
  s.add(a);
  afterStep(s, s.schedule(), next);
  const b = seq([1, 2, 3, 4, 5, 6, 7, 8, 9], 2);
  s.add(b);
  const plan = s.schedule();
  assertEquals(plan.map((p) => p.seq), [a], "B does not fit beside A");
  assertEquals(b.blocks.length, 0, "B gave its matched prefix blocks back");
  assertEquals(b.computed, 0);
  afterStep(s, plan, next);
  // A decodes past its second block (taking an idle one: B holds none), finishes, then B runs and
  // still finds [1..8] cached, unless A's growth took those blocks.
  drain(s, next);
  assert(a.done && b.done);
  s.reap();
  assertEquals(s.allocator.freeBlocks, 4, "every block back");
});

Deno.test("preempted sequences come back first and every step carries work", () => {
  const s = new Scheduler(new KvBlockAllocator(6, 4), {
    maxBatchTokens: 8,
    maxBatchSeqs: 4,
    prefixCaching: true,
  });
  let id = 2000;
  const next = () => id++;
  const seqs = Array.from({ length: 5 }, (_, i) => seq([1, 2, 3, 4, 5 + i, 6, 7], 9));
  for (const q of seqs) s.add(q);
  drain(s, next, 500);
  assert(seqs.every((q) => q.done && q.tokens.length === 7 + 9));
  assert(s.preemptions > 0, "6 blocks cannot hold 5 sequences of 16 tokens");
  s.reap();
  assertEquals(s.allocator.freeBlocks, 6);
});

Deno.test("a prefill limit caps the prompt tokens beside decoding sequences, not a prompt alone", () => {
  const pacer = { prefillLimit: (decoding: number) => decoding === 0 ? Infinity : 6 - decoding };
  const s = new Scheduler(new KvBlockAllocator(64, 4), { maxBatchTokens: 32, maxBatchSeqs: 8, pacer });
  let id = 3000;
  const next = () => id++;
  const a = seq(Array.from({ length: 40 }, (_, i) => i + 1), 20);
  s.add(a);
  let plan = s.schedule();
  assertEquals(plan.map((p) => [p.seq, p.count]), [[a, 32]], "alone: the whole budget");
  afterStep(s, plan, next);
  afterStep(s, s.schedule(), next); // the rest of a's prompt; a samples its first token
  assertEquals(a.computed, 40);
  const b = seq(Array.from({ length: 30 }, (_, i) => 100 + i), 4);
  s.add(b);
  plan = s.schedule();
  assertEquals(plan.map((p) => [p.seq, p.count]), [[a, 1], [b, 5]], "beside a's decode: 6 - 1 prompt tokens");
  assertEquals(s.pacedSteps, 1);
  afterStep(s, plan, next);
  assertEquals(drain(s, next, 200) > 0, true);
  assert(a.done && b.done);
});
