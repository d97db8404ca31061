/**
 * Where the engine runs a forward step: on the JS thread or on a worker thread (`NativeContext.step`). A
 * short step is faster on the JS thread: handing it to a worker thread and its result back costs a
 * wake-up each way, and the step ran slower and less evenly there (one decoding sequence on the 2-core VM:
 * 7.0 against 7.8 ms median, 7.9 against 11-12.5 ms at the 90th percentile). On the JS thread a step is
 * begun (`NativeContext.stepBegin`: the context's threads start it), the event loop turns (the server's
 * HTTP, SSE and detokenizing of the last step's tokens), and the step is joined (`stepJoin`: the JS thread
 * works on it as one of its threads until it ends); before, the turn came after the step, with every
 * compute thread idle. But while the JS thread is joined the event loop waits, so only steps that are
 * both small and quick go there: at most {@link SYNC_MAX_TOKENS} tokens, and taking at most
 * {@link SYNC_MAX_MS} as measured for steps of that size (a big model's decode stays off the event loop).
 * A size never measured runs on a worker thread first, which measures it. Measured through the server on
 * the 2-core VM: one stream 8.0 against 10.2 ms per token; 16 clients of a mix of requests (new prompts
 * arriving all the time) 5-7 % slower with steps of up to 8 tokens on the JS thread, 2-5 % faster with
 * up to 4.
 *
 * @module
 */

/** Most tokens in a step that runs on the JS thread. */
export const SYNC_MAX_TOKENS = 4;
/** Longest step (ms, running average for its token count) that runs on the JS thread. */
export const SYNC_MAX_MS = 40;

/** Running averages of step durations by token count, and the decision they give. */
export class StepPlacement {
  readonly #ms = new Float64Array(SYNC_MAX_TOKENS + 1).fill(NaN);

  /** Whether a step of nTokens tokens runs on the JS thread. */
  onJsThread(nTokens: number): boolean {
    if (nTokens < 1 || nTokens > SYNC_MAX_TOKENS) return false;
    const ms = this.#ms[nTokens];
    return !Number.isNaN(ms) && ms <= SYNC_MAX_MS;
  }

  /** Records how long a step of nTokens tokens took (either thread). */
  record(nTokens: number, ms: number): void {
    if (nTokens < 1 || nTokens > SYNC_MAX_TOKENS || !(ms >= 0)) return;
    const old = this.#ms[nTokens];
    this.#ms[nTokens] = Number.isNaN(old) ? ms : 0.8 * old + 0.2 * ms;
  }
}
