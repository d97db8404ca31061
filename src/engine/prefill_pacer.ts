/**
 * How many prompt tokens a step may carry beside sequences that are decoding. Every decoding stream waits
 * for the whole step, so a step that also prefills 500 prompt tokens holds their next tokens back for as
 * long as those 500 take: on the 2-core development VM about a second (16 streams of the bench:serve mix:
 * inter-token latency p99 816-950 ms with the 512-token budget as the only limit). With the prompt part
 * sized to take about `targetMs` at the time per token of recent big steps, a prompt is prefilled in more,
 * shorter steps and the streams' tokens keep coming in between (the same mix: p99 ~290 ms, aggregate
 * tokens/s and time to first token unchanged within the noise). A step with no sequence decoding still
 * takes the whole `--max-num-batched-tokens`, so a prompt alone is prefilled as fast as before; on a GPU,
 * whose big steps take milliseconds, the budget stays the limit. The price is paid under overload, when
 * prompts queue behind busy streams: 64 clients of the mix on 2 cores waited 3.8 s for a first token at
 * the median against 1.6 s, for an inter-token p99 of 433 against 1042 ms (0: the budget alone).
 *
 * @module
 */

/** The default target (ms) of a step that prefills beside decoding sequences. */
export const DEFAULT_PREFILL_CHUNK_MS = 250;
/** Steps of at least this many tokens measure the time per token (smaller ones are bound by memory). */
export const PACER_MIN_MEASURED_TOKENS = 64;
/** The least prompt tokens a step beside decoding sequences carries, so that a prompt always advances. */
export const PACER_MIN_CHUNK = 16;

/** Running time per token of big steps, and the prompt chunk it allows beside decoding sequences. */
export class PrefillPacer {
  #msPerToken = NaN;

  /** targetMs: how long a step's prompt part may take beside decoding sequences (0: no pacing). */
  constructor(readonly targetMs: number) {
    if (!(targetMs >= 0)) throw new RangeError(`prefill chunk target must be >= 0 ms, got ${targetMs}`);
  }

  /** Records a step of nTokens tokens that took ms milliseconds. */
  record(nTokens: number, ms: number): void {
    if (nTokens < PACER_MIN_MEASURED_TOKENS || !(ms > 0)) return;
    const per = ms / nTokens;
    this.#msPerToken = Number.isNaN(this.#msPerToken) ? per : 0.8 * this.#msPerToken + 0.2 * per;
  }

  /** The measured time per token of big steps (NaN before the first). */
  get msPerToken(): number {
    return this.#msPerToken;
  }

  /**
   * Prompt tokens a step may add to `decoding` decode tokens: Infinity with no sequence decoding, with
   * pacing off, or before any big step has been measured; else what takes `targetMs` at the measured time
   * per token (the wait it adds to the decoding streams' next token), at least {@link PACER_MIN_CHUNK}.
   */
  prefillLimit(decoding: number): number {
    if (decoding === 0 || this.targetMs === 0 || Number.isNaN(this.#msPerToken)) return Infinity;
    return Math.max(PACER_MIN_CHUNK, Math.floor(this.targetMs / this.#msPerToken));
  }
}
