/**
 * What each id of a byte-level BPE vocabulary (GPT-2, Llama 3, Qwen, SmolLM) decodes to, as a table:
 * its bytes, or the literal text of an added token. With it the server turns generated ids into text
 * by concatenating bytes (see src/engine/detokenizer.ts) instead of running the tokenizer's decoder on
 * a window of ids for every token.
 *
 * The table reproduces the decoder exactly: the ByteLevel decoder maps each character of a token back
 * to the byte it stands for (GPT-2's byte-to-character table below), joins the bytes of consecutive
 * tokens and decodes them as UTF-8 with U+FFFD for invalid bytes; an added token's text is copied as it
 * is and ends the run of bytes before it. Vocabularies for which that does not hold (another decoder,
 * a token with a character outside the table) get no table, and decoding goes the general way.
 *
 * @module
 */

/** Each id's bytes and the added tokens' texts; see the module doc. */
export interface BytePieces {
  /** Bytes of every id, back to back: id i's are `bytes.subarray(offsets[i], offsets[i + 1])`. */
  readonly bytes: Uint8Array;
  readonly offsets: Uint32Array;
  /** Each id's bytes decoded, where they are whole UTF-8 on their own (null where they are not). */
  readonly texts: readonly (string | null)[];
  /** Ids that decode to their own text (added tokens): they end the run of bytes before them. */
  readonly literal: ReadonlyMap<number, string>;
}

/**
 * GPT-2's byte-to-character table, reversed: printable Latin-1 bytes stand for themselves, the other
 * 68 bytes for the characters U+0100 on, in byte order.
 */
function characterBytes(): Map<number, number> {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out = new Map<number, number>();
  let next = 0x100;
  for (let b = 0; b < 256; b++) out.set(printable(b) ? b : next++, b);
  return out;
}

/**
 * The table of a vocabulary whose decoder is `decoderType`, or null when decoding it is not byte
 * concatenation. `tokenOf(id)` gives each id's token string for ids 0 .. vocabSize - 1; `added` are
 * the added tokens' texts.
 */
export function bytePieces(
  decoderType: unknown,
  vocabSize: number,
  tokenOf: (id: number) => string | null | undefined,
  added: ReadonlySet<string>,
): BytePieces | null {
  if (decoderType !== "ByteLevel") return null;
  const charBytes = characterBytes();
  const literal = new Map<number, string>();
  const offsets = new Uint32Array(vocabSize + 1);
  let bytes = new Uint8Array(vocabSize * 4);
  let used = 0;
  for (let id = 0; id < vocabSize; id++) {
    offsets[id] = used;
    const token = tokenOf(id);
    if (token === null || token === undefined) return null; // a hole in the ids: leave it to the decoder
    if (added.has(token)) {
      literal.set(id, token);
      continue;
    }
    for (const ch of token) {
      const b = charBytes.get(ch.codePointAt(0)!);
      if (b === undefined) return null;
      if (used === bytes.length) {
        const grown = new Uint8Array(bytes.length * 2);
        grown.set(bytes);
        bytes = grown;
      }
      bytes[used++] = b;
    }
  }
  offsets[vocabSize] = used;
  const all = bytes.slice(0, used);
  const strict = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
  const texts = Array.from({ length: vocabSize }, (_, id) => {
    try {
      return strict.decode(all.subarray(offsets[id], offsets[id + 1]));
    } catch {
      return null; /* part of a character, or bytes that make none */
    }
  });
  return { bytes: all, offsets, texts, literal };
}
