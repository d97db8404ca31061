import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import type { BytePieces } from "../model/byte_pieces.ts";
import { readGgufHeader } from "../model/gguf.ts";
import { loadGgufTokenizer } from "../model/gguf_tokenizer.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { rng } from "../native/quant_testing.ts";
import {
  ByteDetokenizer,
  type Detokenizer,
  IncrementalDetokenizer,
  unfinishedLength,
} from "./detokenizer.ts";

/** A byte-level vocabulary: id = one byte, so multi-byte characters span several ids. */
const byteDecode = (ids: number[]) => new TextDecoder().decode(new Uint8Array(ids));
const bytesOf = (s: string) => [...new TextEncoder().encode(s)];

/**
 * A SentencePiece-like vocabulary: pieces with "▁" for spaces; decoding strips the leading space of
 * the first piece, as the Metaspace decoder does, and <0xNN> pieces are byte fallbacks.
 */
const SP_PIECES = ["▁Hello", "▁world", "!", "<0xE2>", "<0x82>", "<0xAC>", "▁", "<s>"];
function spDecode(ids: number[]): string {
  const bytes: number[] = [];
  for (const id of ids) {
    const piece = SP_PIECES[id];
    const m = /^<0x([0-9A-F]{2})>$/.exec(piece);
    if (m) bytes.push(parseInt(m[1], 16));
    else bytes.push(...new TextEncoder().encode(piece.replaceAll("▁", " ")));
  }
  const text = new TextDecoder().decode(new Uint8Array(bytes));
  return text.startsWith(" ") ? text.slice(1) : text;
}

function pushAll(d: Detokenizer, ids: number[]): string[] {
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  return out;
}

Deno.test("byte-level: a character split over ids is emitted whole", () => {
  const d = new IncrementalDetokenizer({ decode: byteDecode });
  const out = pushAll(d, bytesOf("a🙂b日"));
  assertEquals(out.join(""), "a🙂b日");
  for (const piece of out) assert(!piece.includes("\uFFFD"), `broken character in ${JSON.stringify(piece)}`);
  assertEquals(out, ["a", "", "", "", "🙂", "b", "", "", "日", ""]);
});

Deno.test("byte-level: an unfinished character is flushed at the end", () => {
  const d = new IncrementalDetokenizer({ decode: byteDecode });
  const out = pushAll(d, bytesOf("x").concat(bytesOf("é").slice(0, 1)));
  assertEquals(out, ["x", "", "\uFFFD"]);
});

Deno.test("sentencepiece: leading spaces survive incremental decoding", () => {
  const d = new IncrementalDetokenizer({ decode: spDecode });
  assertEquals(pushAll(d, [0, 1, 2]).join(""), "Hello world!");
});

Deno.test("sentencepiece: prompt context keeps the first generated space", () => {
  const d = new IncrementalDetokenizer({ decode: spDecode, contextIds: [7, 0] });
  assertEquals(d.push(1), " world");
});

Deno.test("sentencepiece: byte fallback pieces make one character", () => {
  const d = new IncrementalDetokenizer({ decode: spDecode });
  assertEquals(pushAll(d, [0, 6, 3, 4, 5]), ["Hello", " ", "", "", "€", ""]);
});

Deno.test("skipped ids (special tokens) never show", () => {
  const d = new IncrementalDetokenizer({ decode: spDecode, skip: (id) => id === 7 });
  assertEquals(pushAll(d, [0, 7, 1]).join(""), "Hello world");
});

Deno.test("long generations keep a bounded window", () => {
  let calls = 0;
  let longest = 0;
  const decode = (ids: number[]) => {
    calls++;
    longest = Math.max(longest, ids.length);
    return byteDecode(ids);
  };
  const d = new IncrementalDetokenizer({ decode });
  const text = "abc".repeat(1000);
  assertEquals(pushAll(d, bytesOf(text)).join(""), text);
  assert(longest <= 4, `window grew to ${longest}`);
  assert(calls < 3 * text.length);
});

Deno.test("real tokenizers: incremental text equals whole decoding on the multilingual corpus", async () => {
  const root = new URL("../../test/fixtures/tokenizer/", import.meta.url);
  const corpus: string[] = JSON.parse(await Deno.readTextFile(new URL("corpus.json", root)));
  for (const name of ["tiny", "smollm2"]) {
    const tokenizer = await Tokenizer.load(new URL(name, root).pathname);
    for (const text of corpus) {
      const ids = tokenizer.encode(text);
      const skip = (id: number) => tokenizer.specialIds.has(id);
      const d = new IncrementalDetokenizer({ decode: (x) => tokenizer.decode(x), skip });
      const pieces = pushAll(d, ids);
      assertEquals(
        pieces.join(""),
        tokenizer.decode(ids, { skipSpecialTokens: true }),
        `${name}: ${JSON.stringify(text)}`,
      );
      for (const p of pieces) {
        assert(!p.includes("\uFFFD"), `${name}: broken character in ${JSON.stringify(p)}`);
      }
    }
  }
});

/** A byte-level table where id = byte for ids 0..255 and 256 is an added token "<x>". */
const BYTES: BytePieces = {
  bytes: Uint8Array.from({ length: 256 }, (_, i) => i),
  offsets: Uint32Array.from({ length: 258 }, (_, i) => Math.min(i, 256)),
  texts: Array.from({ length: 257 }, (_, i) => i < 0x80 ? String.fromCharCode(i) : i === 256 ? "" : null),
  literal: new Map([[256, "<x>"]]),
};

Deno.test("bytes: a character split over ids is emitted whole, as the window does", () => {
  const ids = bytesOf("a🙂b日");
  assertEquals(
    pushAll(new ByteDetokenizer(BYTES), ids),
    pushAll(new IncrementalDetokenizer({ decode: byteDecode }), ids),
  );
});

Deno.test("bytes: an added token ends an unfinished character, as decoding does", () => {
  const d = new ByteDetokenizer(BYTES);
  assertEquals(pushAll(d, [...bytesOf("a"), 0xe6, 256, ...bytesOf("b")]), ["a", "", "\uFFFD<x>", "b", ""]);
});

Deno.test("bytes: skipped ids neither show nor end a character", () => {
  const d = new ByteDetokenizer(BYTES, { skip: (id) => id === 256 });
  assertEquals(pushAll(d, [0xe6, 256, 0x97, 0xa5]).join(""), "日");
});

Deno.test("bytes: a character begun in the prompt comes out whole", () => {
  const d = new ByteDetokenizer(BYTES, { contextIds: [...bytesOf("x"), 0xe6, 0x97] });
  assertEquals(pushAll(d, [0xa5, ...bytesOf("!")]), ["日", "!", ""]);
});

Deno.test("bytes: invalid bytes come out as U+FFFD where a decoder puts them", () => {
  for (
    const ids of [[0xff, 0x41], [0xe6, 0x41], [0xe0, 0x80, 0x41], [0xed, 0xa0, 0x80], [0xf4, 0x90], [
      0xe6,
      0x97,
    ]]
  ) {
    const out = pushAll(new ByteDetokenizer(BYTES), ids).join("");
    assertEquals(out, byteDecode(ids), JSON.stringify(ids));
  }
});

Deno.test("unfinishedLength: only a character more bytes could finish is held", () => {
  const cases: [number[], number][] = [
    [[0x41], 0],
    [[0xe6], 1],
    [[0xe6, 0x97], 2],
    [[0xe6, 0x97, 0xa5], 0],
    [[0xf0, 0x9f, 0x99], 3],
    [[0xe0, 0x80], 0],
    [[0xe0, 0xa0], 2],
    [[0xed, 0xa0], 0],
    [[0xf4, 0x90], 0],
    [[0xf0, 0x8f], 0],
    [[0xc0], 0],
    [[0xff], 0],
    [[0x80, 0x80, 0x80], 0],
    [[0x41, 0xc3], 1],
    [[0xc3, 0xa9, 0xe6], 1],
  ];
  for (const [bytes, n] of cases) {
    assertEquals(unfinishedLength(bytes, bytes.length), n, JSON.stringify(bytes));
  }
});

Deno.test("real byte-level tokenizers: byte detokenizing equals decoding, corpus and random ids", async () => {
  const root = new URL("../../test/fixtures/tokenizer/", import.meta.url);
  const corpus: string[] = JSON.parse(await Deno.readTextFile(new URL("corpus.json", root)));
  for (const name of ["tiny", "smollm2"]) {
    const tokenizer = await Tokenizer.load(new URL(name, root).pathname);
    const pieces = tokenizer.bytePieces;
    assert(pieces !== null, `${name} is byte-level`);
    const skip = (id: number) => tokenizer.specialIds.has(id);
    for (const text of corpus) {
      const ids = tokenizer.encode(text);
      const out = pushAll(new ByteDetokenizer(pieces, { skip }), ids);
      assertEquals(
        out.join(""),
        tokenizer.decode(ids, { skipSpecialTokens: true }),
        `${name}: ${JSON.stringify(text)}`,
      );
      for (const p of out) assert(!p.includes("\uFFFD"), `${name}: broken character in ${JSON.stringify(p)}`);
    }
    // Random ids split characters, put bytes that never make one side by side and mix in added tokens.
    const next = rng(7);
    const added = [...pieces.literal.keys()];
    for (let k = 0; k < 300; k++) {
      const ids = Array.from(
        { length: 1 + Math.floor(next() * 12) },
        () =>
          next() < 0.1 ? added[Math.floor(next() * added.length)] : Math.floor(next() * tokenizer.vocabSize),
      );
      const d: Detokenizer = new ByteDetokenizer(pieces);
      assertEquals(pushAll(d, ids).join(""), tokenizer.decode(ids), `${name}: ${JSON.stringify(ids)}`);
    }
  }
});

Deno.test("a SentencePiece vocabulary has no byte table (its decoder is not byte concatenation)", async () => {
  const header = await readGgufHeader(
    join(new URL("../../", import.meta.url).pathname, "test/fixtures/gguf/spm-tiny.gguf"),
  );
  assertEquals(loadGgufTokenizer(header).tokenizer.bytePieces, null);
});
