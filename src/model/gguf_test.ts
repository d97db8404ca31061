import assert from "node:assert/strict";
import { join } from "node:path";
import { ModelFormatError } from "./errors.ts";
import { GGML_TYPE, GGML_TYPES, readGgufHeader, readGgufTensorBytes } from "./gguf.ts";
import { rejectsWith, ROOT, tempGguf } from "./gguf_test_util.ts";
import { encodeGgufHeader, type GgufToWrite, gv } from "./gguf_write.ts";

/** A small valid file: a few metadata kinds and two tensors. */
const SMALL: GgufToWrite = {
  metadata: [
    ["general.architecture", gv.str("llama")],
    ["llama.block_count", gv.u32(2)],
    ["tokenizer.ggml.tokens", gv.array("string", ["a", "bc", "déf"])],
    ["tokenizer.ggml.scores", gv.array("f32", [0, -1, -2.5])],
  ],
  tensors: [
    { name: "w", dims: [32, 3], type: "Q8_0", data: new Uint8Array(3 * 34).fill(7) },
    { name: "n", dims: [5], type: "F32", data: new Float32Array([1, 2, 3, 4, 5]) },
  ],
};

async function rejects(path: string, ...parts: string[]): Promise<string> {
  return await rejectsWith(readGgufHeader(path), ModelFormatError, path, ...parts);
}

/** Writes raw bytes to a temp file. */
async function rawFile(bytes: Uint8Array): Promise<string> {
  const path = join(await Deno.makeTempDir({ prefix: "hearth-gguf-" }), "raw.gguf");
  await Deno.writeFile(path, bytes);
  return path;
}

Deno.test("reads every metadata value type, arrays as typed arrays", async () => {
  const path = await tempGguf({
    metadata: [
      ["u8", gv.u8(255)],
      ["i8", gv.i8(-128)],
      ["u16", gv.u16(65535)],
      ["i16", gv.i16(-32768)],
      ["u32", gv.u32(4294967295)],
      ["i32", gv.i32(-2147483648)],
      ["f32", gv.f32(0.5)],
      ["bool", gv.bool(true)],
      ["string", gv.str("héllo ✓")],
      ["u64", gv.u64(2n ** 53n - 1n)],
      ["u64.big", gv.u64(2n ** 64n - 1n)],
      ["i64", gv.i64(-5n)],
      ["f64", gv.f64(Math.PI)],
      ["arr.u8", gv.array("u8", [1, 2, 3])],
      ["arr.i32", gv.array("i32", [-1, 2])],
      ["arr.f32", gv.array("f32", [1.5, -2])],
      ["arr.u64", gv.array("u64", [1n, 2n ** 63n])],
      ["arr.f64", gv.array("f64", [0.25])],
      ["arr.bool", gv.array("bool", [true, false])],
      ["arr.string", gv.array("string", ["", "x", "ü"])],
      ["arr.nested", gv.array("array", [gv.array("u16", [7]), gv.array("string", ["y"])])],
      ["arr.empty", gv.array("i8", [])],
    ],
  });
  const h = await readGgufHeader(path);
  const m = h.metadata;
  assert.equal(h.version, 3);
  assert.equal(h.alignment, 32);
  assert.deepEqual(
    [m.get("u8"), m.get("i8"), m.get("u16"), m.get("i16"), m.get("u32"), m.get("i32")],
    [255, -128, 65535, -32768, 4294967295, -2147483648],
  );
  assert.equal(m.get("f32"), 0.5);
  assert.equal(m.get("bool"), true);
  assert.equal(m.get("string"), "héllo ✓");
  assert.equal(m.get("u64"), Number.MAX_SAFE_INTEGER);
  assert.equal(m.get("u64.big"), 2n ** 64n - 1n);
  assert.equal(m.get("i64"), -5);
  assert.equal(m.get("f64"), Math.PI);
  assert.deepEqual(m.get("arr.u8"), new Uint8Array([1, 2, 3]));
  assert.deepEqual(m.get("arr.i32"), new Int32Array([-1, 2]));
  assert.deepEqual(m.get("arr.f32"), new Float32Array([1.5, -2]));
  assert.deepEqual(m.get("arr.u64"), new BigUint64Array([1n, 2n ** 63n]));
  assert.deepEqual(m.get("arr.f64"), new Float64Array([0.25]));
  assert.deepEqual(m.get("arr.bool"), [true, false]);
  assert.deepEqual(m.get("arr.string"), ["", "x", "ü"]);
  assert.deepEqual(m.get("arr.nested"), [new Uint16Array([7]), ["y"]]);
  assert.deepEqual(m.get("arr.empty"), new Int8Array([]));
  assert.deepEqual(h.metadataTypes.get("arr.string"), { type: 9, elementType: 8 });
  assert.deepEqual(h.metadataTypes.get("f32"), { type: 6 });
  assert.deepEqual(h.tensors, []);
});

Deno.test("reads the tensor table: dims innermost first, types, absolute offsets, sizes", async () => {
  const path = await tempGguf(SMALL);
  const h = await readGgufHeader(path);
  const enc = encodeGgufHeader(SMALL);
  assert.equal(h.dataOffset, enc.dataOffset);
  assert.equal(h.dataOffset % 32, 0);
  assert.deepEqual(h.tensors[0], {
    name: "w",
    dims: [32, 3],
    type: 8,
    typeName: "Q8_0",
    relativeOffset: 0,
    offset: h.dataOffset,
    nbytes: 102,
    nElements: 96,
  });
  // The second tensor starts at the next multiple of 32 after the first one's 102 bytes.
  assert.equal(h.tensors[1].relativeOffset, 128);
  assert.equal(h.tensors[1].offset, h.dataOffset + 128);
  assert.equal(h.tensors[1].nbytes, 20);
  assert.equal(h.tensorsByName.get("n"), h.tensors[1]);
  assert.equal(h.fileSize, h.dataOffset + 148);
  const bytes = await readGgufTensorBytes(h, h.tensors[1]);
  assert.deepEqual(new Float32Array(bytes.buffer), new Float32Array([1, 2, 3, 4, 5]));
});

Deno.test("version 2 files and a custom general.alignment", async () => {
  const path = await tempGguf({ ...SMALL, version: 2, alignment: 64 });
  const h = await readGgufHeader(path);
  assert.equal(h.version, 2);
  assert.equal(h.alignment, 64);
  assert.equal(h.metadata.get("general.alignment"), 64);
  assert.equal(h.dataOffset % 64, 0);
  assert.equal(h.tensors[1].relativeOffset, 128);
});

Deno.test("the ggml type table has the GGUF block layouts", () => {
  const want: Record<string, [number, number, number]> = {
    F32: [0, 1, 4],
    F16: [1, 1, 2],
    Q4_0: [2, 32, 18],
    Q4_1: [3, 32, 20],
    Q5_0: [6, 32, 22],
    Q5_1: [7, 32, 24],
    Q8_0: [8, 32, 34],
    Q8_1: [9, 32, 36],
    Q2_K: [10, 256, 84],
    Q3_K: [11, 256, 110],
    Q4_K: [12, 256, 144],
    Q5_K: [13, 256, 176],
    Q6_K: [14, 256, 210],
    Q8_K: [15, 256, 292],
    I8: [24, 1, 1],
    I16: [25, 1, 2],
    I32: [26, 1, 4],
    I64: [27, 1, 8],
    F64: [28, 1, 8],
    BF16: [30, 1, 2],
  };
  for (const [name, [code, block, bytes]] of Object.entries(want)) {
    assert.equal(GGML_TYPE[name], code, name);
    assert.deepEqual(GGML_TYPES.get(code), { name, blockSize: block, typeSize: bytes });
  }
});

Deno.test("a 150k-entry vocabulary reads quickly and exactly", async () => {
  const n = 150_000;
  const tokens = Array.from({ length: n }, (_, i) => `tok${i}_${"é".repeat(i % 5)}`);
  const scores = Float32Array.from({ length: n }, (_, i) => -i);
  const types = new Int32Array(n).fill(1);
  const merges = Array.from({ length: n - 1000 }, (_, i) => `a${i} b${i}`);
  const path = await tempGguf({
    metadata: [
      ["tokenizer.ggml.tokens", gv.array("string", tokens)],
      ["tokenizer.ggml.scores", gv.array("f32", scores)],
      ["tokenizer.ggml.token_type", gv.array("i32", types)],
      ["tokenizer.ggml.merges", gv.array("string", merges)],
    ],
  });
  const t0 = performance.now();
  const h = await readGgufHeader(path);
  const ms = performance.now() - t0;
  assert.deepEqual(h.metadata.get("tokenizer.ggml.tokens"), tokens);
  assert.deepEqual(h.metadata.get("tokenizer.ggml.scores"), scores);
  assert.deepEqual(h.metadata.get("tokenizer.ggml.merges"), merges);
  assert.ok(ms < 5000, `took ${ms} ms`);
});

Deno.test("tensor data is left unread (a sparse 256 MiB tensor)", async () => {
  const path = await tempGguf({ tensors: [{ name: "big", dims: [4096, 16384], type: "F32" }] });
  const h = await readGgufHeader(path);
  assert.equal(h.tensors[0].nbytes, 256 << 20);
  assert.equal(h.fileSize, h.dataOffset + (256 << 20));
});

Deno.test("error: wrong magic", async () => {
  const path = await tempGguf({ ...SMALL, magic: "GGML" });
  await rejects(path, "not a GGUF file", `"GGML"`, "47 47 4d 4c", `expected "GGUF"`);
});

Deno.test("error: unsupported version (1, 4, and big-endian 3)", async () => {
  await rejects(await tempGguf({ ...SMALL, version: 1 }), "unsupported GGUF version 1", "versions 2 and 3");
  await rejects(await tempGguf({ ...SMALL, version: 4 }), "unsupported GGUF version 4");
  await rejects(await tempGguf({ ...SMALL, version: 0x03000000 }), "version 50331648", "big-endian");
});

Deno.test("error: unknown tensor type names the tensor and the type", async () => {
  const path = await tempGguf({ tensors: [{ name: "blk.0.attn_q.weight", dims: [32, 4], type: 31 }] });
  await rejects(path, "tensor blk.0.attn_q.weight", "unknown ggml type 31");
});

Deno.test("error: dimensions overflowing 2^53 elements", async () => {
  const path = await tempGguf({
    tensors: [{ name: "huge", dims: [2 ** 20, 2 ** 20, 2 ** 20], type: "F32" }],
  });
  await rejects(path, "tensor huge", "overflowing 2^53", "dimension 2");
  const one = await tempGguf({ tensors: [{ name: "huge1", dims: [2n ** 60n], type: "F32" }] });
  await rejects(one, "tensor huge1", "overflowing 2^53", "dimension 0 is 1152921504606846976");
});

Deno.test("error: a zero or negative dimension", async () => {
  await rejects(
    await tempGguf({ tensors: [{ name: "z", dims: [32, 0], type: "F32" }] }),
    "tensor z",
    "dimension 1 equal to 0",
  );
  await rejects(
    await tempGguf({ tensors: [{ name: "neg", dims: [BigInt.asUintN(64, -4n)], type: "F32" }] }),
    "tensor neg",
    "negative dimension 0 (-4 as int64)",
  );
});

Deno.test("error: too many dimensions", async () => {
  await rejects(
    await tempGguf({ tensors: [{ name: "t5", dims: [1, 1, 1, 1, 1], type: "F32" }] }),
    "tensor t5",
    "5 dimensions",
    "1 to 4",
  );
});

Deno.test("error: a quantized row that is not a whole number of blocks", async () => {
  await rejects(
    await tempGguf({ tensors: [{ name: "q", dims: [48, 2], type: "Q4_K" }] }),
    "tensor q of type Q4_K",
    "row of 48 elements",
    "256-element block",
  );
});

Deno.test("error: a tensor running past the end of the file, with the numbers", async () => {
  const path = await tempGguf(SMALL);
  const h = await readGgufHeader(path);
  const cut = h.fileSize - 1;
  await Deno.truncate(path, cut);
  await rejects(
    path,
    "tensor n runs past the end of the file",
    `${h.tensors[1].offset}..${h.tensors[1].offset + 20}`,
    `the file has ${cut} bytes`,
  );
});

Deno.test("error: a header cut at any byte says where and while reading what", async () => {
  const enc = encodeGgufHeader(SMALL);
  const full = new Uint8Array(enc.fileSize);
  full.set(enc.bytes);
  const whats = new Set<string>();
  for (let cut = 0; cut < enc.dataOffset; cut++) {
    const path = await rawFile(full.subarray(0, cut));
    if (cut < enc.tensorInfoEnd) {
      const msg = await rejects(path, `truncated at byte ${cut} while reading `);
      whats.add(msg.replace(/.*while reading /, "").replace(/ \(.*/, "").replace(/:.*/, ""));
    } else {
      // Cut inside the alignment padding: the header is whole, the data is not.
      await rejects(path, "runs past the end of the file");
    }
  }
  for (
    const what of [
      "the magic",
      "the version",
      "the tensor count",
      "the tensor table",
      "the length of the key of metadata entry 2",
      "the key of metadata entry 2",
      "the element count of metadata tokenizer.ggml.tokens",
      "the value type of metadata llama.block_count",
      "metadata llama.block_count",
      "metadata tokenizer.ggml.tokens[2]",
      "the name of tensor 0",
      "dimension 1 of tensor w",
      "the ggml type of tensor n",
      "the offset of tensor n",
    ]
  ) assert.ok(whats.has(what), `no cut reported "${what}"; got ${[...whats].join(" | ")}`);
});

Deno.test("error: a string length beyond the file", async () => {
  const raw = new Uint8Array(12);
  const v = new DataView(raw.buffer);
  v.setUint32(0, 8, true); // string
  v.setBigUint64(4, 2n ** 60n, true);
  const path = await tempGguf({ metadata: [["general.name", gv.raw(raw)]] });
  await rejects(path, "metadata general.name", "declares 1152921504606846976 bytes", "absurd");
  v.setBigUint64(4, 1000n, true);
  const short = await tempGguf({ metadata: [["general.name", gv.raw(raw)]] });
  await rejects(short, "metadata general.name", "declares 1000 bytes", "truncated at byte");
});

Deno.test("error: absurd array, metadata and tensor counts", async () => {
  const raw = new Uint8Array(16);
  const v = new DataView(raw.buffer);
  v.setUint32(0, 9, true); // array
  v.setUint32(4, 4, true); // of u32
  v.setBigUint64(8, 2n ** 40n, true);
  await rejects(
    await tempGguf({ metadata: [["tokenizer.ggml.token_type", gv.raw(raw)]] }),
    "metadata tokenizer.ggml.token_type",
    "declares 1099511627776 elements",
  );
  for (const [at, what] of [[8, "tensor table"], [16, "metadata"]] as const) {
    const bytes = encodeGgufHeader(SMALL).bytes.slice();
    new DataView(bytes.buffer).setBigUint64(at, 2n ** 50n, true);
    await rejects(await rawFile(bytes), `the ${what} declares 1125899906842624`, `at byte ${at}`, "absurd");
  }
});

Deno.test("error: a misaligned tensor offset", async () => {
  const path = await tempGguf({
    tensors: [{ name: "m", dims: [4], type: "F32", offset: 8, data: new Uint8Array(16) }],
  });
  await rejects(path, "tensor m has data offset 8, not a multiple of the alignment 32");
});

Deno.test("error: overlapping tensors", async () => {
  const path = await tempGguf({
    tensors: [
      { name: "a", dims: [16], type: "F32", offset: 0 },
      { name: "b", dims: [16], type: "F32", offset: 32 },
    ],
  });
  await rejects(path, "tensor b", "overlaps tensor a");
});

Deno.test("error: bad general.alignment", async () => {
  await rejects(
    await tempGguf({ metadata: [["general.alignment", gv.u32(48)]] }),
    "general.alignment",
    "power of two",
    "48",
  );
  await rejects(
    await tempGguf({ metadata: [["general.alignment", gv.str("32")]] }),
    "general.alignment",
    "(string)",
  );
});

Deno.test("error: duplicate keys and tensor names", async () => {
  await rejects(
    await tempGguf({ metadata: [["k", gv.u32(1)], ["k", gv.u32(2)]] }),
    "metadata key k appears twice",
  );
  await rejects(
    await tempGguf({
      tensors: [{ name: "t", dims: [8], type: "F32" }, { name: "t", dims: [8], type: "F32" }],
    }),
    "tensor t appears twice",
  );
});

Deno.test("error: unknown value and element types, bad bools, invalid UTF-8 keys", async () => {
  const raw = (...words: number[]) => new Uint8Array(new Uint32Array(words).buffer);
  await rejects(
    await tempGguf({ metadata: [["x", gv.raw(raw(13, 0))]] }),
    "metadata x",
    "unknown value type 13",
  );
  await rejects(
    await tempGguf({ metadata: [["x", gv.raw(raw(9, 42, 0, 0))]] }),
    "metadata x",
    "unknown array element type 42",
  );
  await rejects(
    await tempGguf({ metadata: [["b", gv.raw(new Uint8Array([7, 0, 0, 0, 2]))]] }),
    "metadata b",
    "bool stored as 2",
  );
  const bytes = encodeGgufHeader({ metadata: [["ab", gv.u8(1)]] }).bytes.slice();
  bytes[24 + 8] = 0xff; // first key byte
  await rejects(await rawFile(bytes), "the key of metadata entry 0", "not valid UTF-8");
});

Deno.test("the committed SentencePiece fixture reads (written by gguf-py, not our writer)", async () => {
  const h = await readGgufHeader(join(ROOT, "test/fixtures/gguf/spm-tiny.gguf"));
  assert.equal(h.metadata.get("tokenizer.ggml.model"), "llama");
  assert.equal((h.metadata.get("tokenizer.ggml.tokens") as string[]).length, 700);
  assert.ok(h.metadata.get("tokenizer.ggml.scores") instanceof Float32Array);
  assert.ok(h.metadata.get("tokenizer.ggml.token_type") instanceof Int32Array);
});
