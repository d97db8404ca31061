/**
 * Decides what each forward step carries: one token for every running sequence that is decoding, then
 * prompt chunks of waiting sequences within the step's token budget. Blocks come from the
 * {@link KvBlockAllocator}; when they run out, the newest running sequence is preempted (its blocks
 * freed, its tokens recomputed later) so older requests keep going.
 *
 * @module
 */
import { blockHash, type KvBlockAllocator } from "./kv_allocator.ts";
import type { Sequence } from "./sequence.ts";

/** A slice of one sequence's tokens to run in the next step. */
export interface PlannedSlice {
  seq: Sequence;
  /** First token index (= position) of the slice. */
  start: number;
  count: number;
  /** The slice reaches the sequence's last token, so a new token is sampled after it. */
  sample: boolean;
}

/** Limits of one step, and whether prompts share cached prefix blocks. */
export interface SchedulerLimits {
  maxBatchTokens: number;
  maxBatchSeqs: number;
  prefixCaching?: boolean;
  /**
   * The most prompt tokens a step may carry beside its `decoding` decode tokens (the engine's
   * PrefillPacer, see prefill_pacer.ts); the step's token budget holds either way.
   */
  pacer?: { prefillLimit(decoding: number): number };
}

/** FIFO admission with decode-first steps and newest-first preemption. */
export class Scheduler {
  /** Sequences not yet (or no longer) holding cache: served in order. */
  readonly waiting: Sequence[] = [];
  /** Sequences holding cache blocks, oldest first. */
  readonly running: Sequence[] = [];
  /** How many preemptions have happened (for logs and tests). */
  preemptions = 0;
  /** Tokens admitted for computing (prompts, and recomputation after preemption). */
  admittedTokens = 0;
  /** Of those, tokens whose KV came from shared prefix blocks instead. */
  prefixHitTokens = 0;
  /** Steps whose prompt part used all of a prefill limit below the step's token budget. */
  pacedSteps = 0;

  constructor(readonly allocator: KvBlockAllocator, readonly limits: SchedulerLimits) {}

  /** Queues a new sequence. */
  add(seq: Sequence): void {
    this.waiting.push(seq);
  }

  /** True while any sequence is waiting or running. */
  get busy(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  /** Drops finished and cancelled sequences, returning their blocks. */
  reap(): void {
    for (const list of [this.waiting, this.running]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const s = list[i];
        if (s.done || s.cancelled) {
          this.allocator.release(s.blocks);
          list.splice(i, 1);
        }
      }
    }
  }

  #preempt(seq: Sequence): void {
    this.allocator.release(seq.blocks);
    seq.hashes.length = 0;
    seq.computed = 0;
    const i = this.running.indexOf(seq);
    if (i >= 0) this.running.splice(i, 1);
    this.waiting.unshift(seq); // first in line again: it was admitted before anything still waiting
    this.preemptions++;
  }

  /** Before a sequence's first chunk: take the cached blocks its leading full blocks hash to. */
  #reusePrefix(seq: Sequence): void {
    this.admittedTokens += seq.tokens.length;
    if (!this.limits.prefixCaching) return;
    const bs = this.allocator.blockSize;
    // The last token is always computed: its logits give the next token.
    while ((seq.blocks.length + 1) * bs <= seq.tokens.length - 1) {
      const start = seq.blocks.length * bs;
      const hash = blockHash(seq.hashes.at(-1) ?? "", seq.tokens, start, start + bs);
      const block = this.allocator.share(hash);
      if (block === undefined) break;
      seq.blocks.push(block);
      seq.hashes.push(hash);
    }
    seq.computed = seq.blocks.length * bs;
    this.prefixHitTokens += seq.computed;
  }

  /** Undoes #reusePrefix for a waiting sequence that could not be admitted after all. */
  #unreusePrefix(seq: Sequence): void {
    this.admittedTokens -= seq.tokens.length;
    this.prefixHitTokens -= seq.computed;
    this.allocator.release(seq.blocks);
    seq.hashes.length = 0;
    seq.computed = 0;
  }

  /** After a step: names the sequence's newly completed full blocks so later prompts can share them. */
  publish(seq: Sequence): void {
    if (!this.limits.prefixCaching) return;
    const bs = this.allocator.blockSize;
    while ((seq.hashes.length + 1) * bs <= seq.computed) {
      const i = seq.hashes.length;
      const hash = blockHash(seq.hashes.at(-1) ?? "", seq.tokens, i * bs, (i + 1) * bs);
      this.allocator.publish(seq.blocks[i], hash);
      seq.hashes.push(hash);
    }
  }

  /** Plans the next step. An empty plan means nothing can run now. */
  schedule(): PlannedSlice[] {
    this.reap();
    const plan: PlannedSlice[] = [];
    let budget = this.limits.maxBatchTokens;
    const planned = new Set<Sequence>();

    // 1. Decode: every running sequence whose only uncached token is the one it sampled last.
    for (let i = 0; i < this.running.length && plan.length < this.limits.maxBatchSeqs && budget > 0; i++) {
      const seq = this.running[i];
      if (seq.computed !== seq.tokens.length - 1) continue;
      while (!this.allocator.ensure(seq.blocks, seq.tokens.length)) {
        const victim = this.running[this.running.length - 1];
        this.#preempt(victim);
        if (victim === seq) break;
      }
      if (!this.running.includes(seq)) break; // it was the newest and gave way
      plan.push({ seq, start: seq.computed, count: 1, sample: true });
      planned.add(seq);
      budget--;
    }

    // 2. Prefill: running sequences part-way through their prompt, then waiting ones in order.
    const limit = this.limits.pacer?.prefillLimit(plan.length) ?? Infinity;
    const paced = limit < budget;
    if (paced) budget = limit;
    const candidates = [
      ...this.running.filter((s) => !planned.has(s) && s.computed < s.tokens.length - 1),
      ...this.waiting,
    ];
    for (const seq of candidates) {
      if (budget <= 0 || plan.length >= this.limits.maxBatchSeqs) break;
      const w = this.waiting.indexOf(seq);
      if (seq.computed === 0 && seq.blocks.length === 0) this.#reusePrefix(seq);
      let count = Math.min(seq.tokens.length - seq.computed, budget);
      if (!this.allocator.ensure(seq.blocks, seq.computed + count)) {
        const fits = (seq.blocks.length + this.allocator.freeBlocks) * this.allocator.blockSize -
          seq.computed;
        count = Math.min(count, fits);
        if (count <= 0 || !this.allocator.ensure(seq.blocks, seq.computed + count)) {
          // A waiting sequence holds nothing: the cached prefix blocks it just took were idle, hence
          // free for anyone; kept, they could starve the running sequences that need them, and a step
          // with nothing to run would wait forever.
          if (w >= 0) this.#unreusePrefix(seq);
          break;
        }
      }
      if (w >= 0) {
        this.waiting.splice(w, 1);
        this.running.push(seq);
      }
      plan.push({ seq, start: seq.computed, count, sample: seq.computed + count === seq.tokens.length });
      budget -= count;
    }
    if (paced && budget <= 0) this.pacedSteps++;

    // Every block is held by sequences part-way through prefill: let the newest give way.
    if (plan.length === 0 && this.running.length > 1) {
      this.#preempt(this.running[this.running.length - 1]);
      return this.schedule();
    }
    return plan;
  }
}
