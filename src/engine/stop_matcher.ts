/**
 * Stop sequences matched on generated text. Tokens do not line up with stop strings (`"\n\n"` may
 * arrive as `"\n"` + `"\nThe"`), so text that could still become a stop sequence is held back until
 * the next piece decides it: nothing past a stop sequence, nor the sequence itself, is ever emitted.
 *
 * @module
 */

/** What one {@link StopMatcher.push} lets through. */
export interface StopMatchResult {
  /** Text that is safe to show now. */
  text: string;
  /** Set when a stop sequence completed; the generation should end. */
  stopped: string | null;
}

/** Holds back possible stop-sequence prefixes; see the module doc. */
export class StopMatcher {
  readonly #stops: string[];
  readonly #longest: number;
  #held = "";
  #stopped: string | null = null;

  /** Empty strings are dropped: they would match everywhere. */
  constructor(stops: readonly string[]) {
    this.#stops = [...new Set(stops.filter((s) => s.length > 0))];
    this.#longest = this.#stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** True when there is nothing to match (every push passes straight through). */
  get empty(): boolean {
    return this.#stops.length === 0;
  }

  /** The stop sequence that matched, if any. */
  get stopped(): string | null {
    return this.#stopped;
  }

  /** Feeds the next piece of text; after a match every later push yields nothing. */
  push(piece: string): StopMatchResult {
    if (this.#stopped !== null) return { text: "", stopped: this.#stopped };
    if (this.#stops.length === 0) return { text: piece, stopped: null };
    const buffer = this.#held + piece;
    // The earliest match wins, so that text before a later stop sequence is never cut wrongly.
    let cut = -1;
    let which: string | null = null;
    for (const stop of this.#stops) {
      const at = buffer.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
        which = stop;
      }
    }
    if (which !== null) {
      this.#stopped = which;
      this.#held = "";
      return { text: buffer.slice(0, cut), stopped: which };
    }
    const keep = this.#partialSuffix(buffer);
    this.#held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: null };
  }

  /** Releases held text at the end of a generation that did not stop on a sequence. */
  flush(): string {
    const rest = this.#held;
    this.#held = "";
    return this.#stopped === null ? rest : "";
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of some stop sequence. */
  #partialSuffix(buffer: string): number {
    const max = Math.min(buffer.length, this.#longest - 1);
    for (let n = max; n > 0; n--) {
      const tail = buffer.slice(buffer.length - n);
      if (this.#stops.some((stop) => stop.startsWith(tail))) return n;
    }
    return 0;
  }
}
