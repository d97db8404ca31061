import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { bytePieces } from "./byte_pieces.ts";

const VOCAB = ["!", "Ġthe", "Ċ", "Ã©", "<|end|>", "ÿ"];
const tokenOf = (id: number) => VOCAB[id];
const bytesOf = (p: NonNullable<ReturnType<typeof bytePieces>>, id: number) => [
  ...p.bytes.subarray(p.offsets[id], p.offsets[id + 1]),
];

Deno.test("byte-level tokens map back to GPT-2's bytes; added tokens stay text", () => {
  const p = bytePieces("ByteLevel", VOCAB.length, tokenOf, new Set(["<|end|>"]))!;
  assertEquals(bytesOf(p, 0), [0x21]);
  assertEquals(bytesOf(p, 1), [0x20, 0x74, 0x68, 0x65]); // Ġ is the space
  assertEquals(bytesOf(p, 2), [0x0a]); // Ċ is the newline
  assertEquals(bytesOf(p, 3), [0xc3, 0xa9]); // "é" as its two UTF-8 bytes
  assertEquals(bytesOf(p, 4), []);
  assertEquals(p.literal, new Map([[4, "<|end|>"]]));
  assertEquals(bytesOf(p, 5), [0xff]);
});

Deno.test("no table where decoding is not byte concatenation", () => {
  assertEquals(bytePieces("Metaspace", VOCAB.length, tokenOf, new Set()), null);
  assertEquals(bytePieces(undefined, VOCAB.length, tokenOf, new Set()), null);
  // A character outside GPT-2's table (here a raw space) in a token that is not an added one.
  assertEquals(bytePieces("ByteLevel", 1, () => "a b", new Set()), null);
  // A hole in the ids.
  assertEquals(bytePieces("ByteLevel", VOCAB.length + 1, tokenOf, new Set(["<|end|>"])), null);
});

Deno.test("each id's text where its bytes are whole UTF-8 on their own", () => {
  const p = bytePieces("ByteLevel", 4, (id) => ["Ġthe", "Ã", "Ã©", "ÿ"][id], new Set())!;
  assertEquals(p.texts, [" the", null, "é", null]);
});
