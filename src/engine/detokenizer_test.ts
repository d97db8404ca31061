import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { IncrementalDetokenizer } from "./detokenizer.ts";

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

function pushAll(d: IncrementalDetokenizer, ids: number[]): string[] {
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
  const { Tokenizer } = await import("../model/tokenizer.ts");
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
