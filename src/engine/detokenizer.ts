/**
 * Incremental detokenizing: turns generated ids into text deltas as they arrive, emitting text only
 * once it is valid UTF-8. A token can hold part of a character (byte-level BPE splits emoji and CJK
 * over several ids; SentencePiece byte-fallback emits `<0xE6>`-style pieces), and decoding one id on
 * its own loses context (SentencePiece drops the leading space of a lone `▁word`). So a short window
 * of ids is decoded, compared with the decoding of the window without the newest ids, and only the
 * difference is emitted; while the newest text ends in U+FFFD (an unfinished character) it is held.
 * This is the prefix/read-offset technique of text-generation-inference and vLLM.
 *
 * Byte-level BPE vocabularies (see src/model/byte_pieces.ts) need none of that: their text is the
 * UTF-8 decoding of the ids' bytes joined, so {@link ByteDetokenizer} keeps the bytes of an unfinished
 * character and decodes only each new id's bytes (most ids: the table's text of the id). The server
 * runs it between two decode steps for every stream; the window's two full decodes per token took
 * about 80 µs there (the step before has just pushed the tokenizer's code and data out of the caches).
 * {@link detokenizerFor} picks the one a tokenizer allows.
 *
 * @module
 */

import type { BytePieces } from "../model/byte_pieces.ts";

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

/** Turns generated ids into text deltas. */
export interface Detokenizer {
  /** Adds one generated id; returns the text it completes (often "", never a broken character). */
  push(id: number): string;
  /** Emits whatever is still held at the end of a generation, unfinished characters included. */
  flush(): string;
}

/** Turns ids into text deltas by decoding a window of ids; see the module doc. */
export class IncrementalDetokenizer implements Detokenizer {
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

/** Decodes without keeping state (each call is a whole input) and keeps a byte-order mark, as the decoder does. */
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * How many of the last bytes of `bytes[0, n)` begin a character that more bytes could still finish
 * (0 when the text ends whole, or in bytes that are invalid whatever follows). Decoding everything
 * before them gives what a streaming UTF-8 decoder would have given so far, since a decoder meets the
 * lead byte of such a character in its initial state.
 */
export function unfinishedLength(bytes: ArrayLike<number>, n: number): number {
  for (let k = 1; k <= Math.min(3, n); k++) {
    const lead = bytes[n - k];
    if ((lead & 0xc0) === 0x80) continue; // a continuation byte: the lead is further back
    const need = lead >= 0xc2 && lead <= 0xdf
      ? 2
      : lead >= 0xe0 && lead <= 0xef
      ? 3
      : lead >= 0xf0 && lead <= 0xf4
      ? 4
      : 1;
    if (need <= k) return 0;
    if (k >= 2) {
      // The second byte's range is narrower after these leads (no overlong forms, no surrogates, ≤ U+10FFFF).
      const second = bytes[n - k + 1];
      const [lo, hi] = lead === 0xe0
        ? [0xa0, 0xbf]
        : lead === 0xed
        ? [0x80, 0x9f]
        : lead === 0xf0
        ? [0x90, 0xbf]
        : lead === 0xf4
        ? [0x80, 0x8f]
        : [0x80, 0xbf];
      if (second < lo || second > hi) return 0;
    }
    return k;
  }
  return 0;
}

/** Options of {@link ByteDetokenizer}: as {@link DetokenizerOptions}, without the decode function. */
export type ByteDetokenizerOptions = Omit<DetokenizerOptions, "decode">;

/** Byte-level vocabularies' detokenizer: the ids' bytes decoded as they come; see the module doc. */
export class ByteDetokenizer implements Detokenizer {
  readonly #pieces: BytePieces;
  readonly #skip: (id: number) => boolean;
  /** Bytes of a character begun but not finished (at most 3). */
  #held: number[] = [];

  constructor(pieces: BytePieces, options: ByteDetokenizerOptions = {}) {
    this.#pieces = pieces;
    this.#skip = options.skip ?? (() => false);
    // A character the prompt began is finished by the first generated bytes and comes out whole.
    const context = (options.contextIds ?? []).filter((id) => !this.#skip(id)).slice(-CONTEXT_IDS);
    for (const id of context) {
      if (pieces.literal.has(id)) this.#held = [];
      else this.#take(id);
    }
  }

  push(id: number): string {
    if (this.#skip(id)) return "";
    const literal = this.#pieces.literal.get(id);
    if (literal !== undefined) return this.flush() + literal; // an added token ends the run of bytes
    if (this.#held.length === 0) {
      const text = this.#pieces.texts[id];
      if (text !== null) return text;
    }
    return this.#take(id);
  }

  flush(): string {
    if (this.#held.length === 0) return "";
    const text = utf8.decode(new Uint8Array(this.#held));
    this.#held = [];
    return text;
  }

  /** Adds id's bytes to the held ones; returns the text of the characters they finish. */
  #take(id: number): string {
    const { bytes, offsets } = this.#pieces;
    const all = [...this.#held, ...bytes.subarray(offsets[id], offsets[id + 1])];
    const keep = unfinishedLength(all, all.length);
    this.#held = all.slice(all.length - keep);
    return keep === all.length ? "" : utf8.decode(new Uint8Array(all.slice(0, all.length - keep)));
  }
}

/** What {@link detokenizerFor} needs of a tokenizer (src/model/tokenizer.ts's Tokenizer). */
export interface DetokenizerSource {
  readonly bytePieces: BytePieces | null;
  decode(ids: number[]): string;
}

/** The detokenizer for a tokenizer's output: by bytes where its vocabulary allows, else by windows. */
export function detokenizerFor(
  tokenizer: DetokenizerSource,
  options: ByteDetokenizerOptions = {},
): Detokenizer {
  const pieces = tokenizer.bytePieces;
  return pieces
    ? new ByteDetokenizer(pieces, options)
    : new IncrementalDetokenizer({ ...options, decode: (ids) => tokenizer.decode(ids) });
}
