/**
 * Incremental detokenizing: turns generated ids into text deltas as they arrive, emitting text only
 * once it is valid UTF-8. A token can hold part of a character (byte-level BPE splits emoji and CJK
 * over several ids; SentencePiece byte-fallback emits `<0xE6>`-style pieces), and decoding one id on
 * its own loses context (SentencePiece drops the leading space of a lone `▁word`). So a short window
 * of ids is decoded, compared with the decoding of the window without the newest ids, and only the
 * difference is emitted; while the newest text ends in U+FFFD (an unfinished character) it is held.
 * This is the prefix/read-offset technique of text-generation-inference and vLLM.
 *
 * @module
 */

/** Decodes ids to text; incomplete UTF-8 must come out as U+FFFD (what tokenizer decoders do). */
export type DecodeFn = (ids: number[]) => string;

/** Options of {@link IncrementalDetokenizer}. */
export interface DetokenizerOptions {
  decode: DecodeFn;
  /**
   * Ids already before the generated ones (the prompt). Their text is never emitted, but the last few
   * give the first generated tokens their context (a leading space, a character begun in the prompt).
   */
  contextIds?: readonly number[];
  /** Ids whose text is never shown (special tokens when skip_special_tokens). */
  skip?: (id: number) => boolean;
}

/** How many prompt ids seed the window; enough for any character or word-boundary context. */
const CONTEXT_IDS = 6;

const REPLACEMENT = "\uFFFD";

/** Turns ids into text deltas; see the module doc. */
export class IncrementalDetokenizer {
  readonly #decode: DecodeFn;
  readonly #skip: (id: number) => boolean;
  /** Ids from `#prefix` on; older ones are dropped as the window moves. */
  #ids: number[];
  /** Window start: ids before it were fully emitted and are only context. */
  #prefix = 0;
  /** Ids before this were emitted. */
  #read: number;
  /** decode(ids[prefix, read)), cached because it changes only when the offsets move. */
  #prefixText: string;

  constructor(options: DetokenizerOptions) {
    this.#decode = options.decode;
    this.#skip = options.skip ?? (() => false);
    const context = (options.contextIds ?? []).filter((id) => !this.#skip(id)).slice(-CONTEXT_IDS);
    this.#ids = [...context];
    this.#read = context.length;
    this.#prefixText = context.length > 0 ? this.#decode(context) : "";
  }

  /** Adds one generated id; returns the text it completes (often "", never a broken character). */
  push(id: number): string {
    if (this.#skip(id)) return "";
    this.#ids.push(id);
    return this.#emit(false);
  }

  /** Emits whatever is still held at the end of a generation, unfinished characters included. */
  flush(): string {
    return this.#emit(true);
  }

  #emit(final: boolean): string {
    if (this.#ids.length === this.#read) return "";
    const text = this.#decode(this.#ids.slice(this.#prefix));
    if (text.length <= this.#prefixText.length) {
      // Nothing visible yet (e.g. a lone SentencePiece "▁"): wait for more ids.
      return "";
    }
    if (!final && text.endsWith(REPLACEMENT)) return "";
    const delta = text.slice(this.#prefixText.length);
    // Move the window: what was read becomes the new context start.
    const drop = this.#read - this.#prefix;
    this.#ids = this.#ids.slice(drop);
    this.#prefix = 0;
    this.#read = this.#ids.length;
    this.#prefixText = this.#decode(this.#ids);
    return delta;
  }
}
