import assert from "node:assert/strict";
import { join } from "node:path";
import { ModelFormatError } from "./errors.ts";
import { MAX_HEADER_BYTES, parseSafetensorsHeader, readSafetensorsHeader } from "./safetensors.ts";
import { writeRawSafetensors } from "./test_util.ts";

/** Writes a raw file in a fresh temp dir and returns its path. */
async function raw(header: Record<string, unknown> | string, dataBytes: number, declared?: bigint) {
  const path = join(await Deno.makeTempDir(), "model.safetensors");
  await writeRawSafetensors(path, header, dataBytes, declared);
  return path;
}

/** Asserts that reading `path` fails with a ModelFormatError whose message contains every part. */
async function rejects(path: string, ...parts: string[]) {
  await assert.rejects(readSafetensorsHeader(path), (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${e}`);
    for (const p of [path, ...parts]) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

Deno.test("reads names, dtypes, shapes, absolute offsets and metadata", async () => {
  const header = {
    __metadata__: { format: "pt" },
    a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
    b: { dtype: "BF16", shape: [4], data_offsets: [24, 32] },
    c: { dtype: "F16", shape: [], data_offsets: [32, 34] },
    empty: { dtype: "F32", shape: [0, 5], data_offsets: [34, 34] },
  };
  const path = await raw(header, 34);
  const h = await readSafetensorsHeader(path);
  const n = JSON.stringify(header).length;
  assert.equal(h.headerSize, n);
  assert.equal(h.dataStart, 8 + n);
  assert.equal(h.fileSize, 8 + n + 34);
  assert.deepEqual(h.metadata, { format: "pt" });
  assert.deepEqual([...h.tensors.keys()], ["a", "b", "c", "empty"]);
  assert.deepEqual(h.tensors.get("a"), { name: "a", dtype: "f32", shape: [2, 3], offset: 8 + n, nbytes: 24 });
  assert.deepEqual(h.tensors.get("b"), {
    name: "b",
    dtype: "bf16",
    shape: [4],
    offset: 8 + n + 24,
    nbytes: 8,
  });
  assert.deepEqual(h.tensors.get("c"), { name: "c", dtype: "f16", shape: [], offset: 8 + n + 32, nbytes: 2 });
  assert.equal(h.tensors.get("empty")!.nbytes, 0);
});

Deno.test("a large data section is left unread", async () => {
  // The 64 MiB data section is a sparse hole; only the header is read.
  const path = await raw({ big: { dtype: "F32", shape: [16, 1 << 20], data_offsets: [0, 64 << 20] } }, 0);
  using f = await Deno.open(path, { write: true });
  await f.truncate((await f.stat()).size + (64 << 20));
  const h = await readSafetensorsHeader(path);
  assert.equal(h.tensors.get("big")!.nbytes, 64 << 20);
});

Deno.test("a file shorter than 8 bytes is rejected", async () => {
  const path = join(await Deno.makeTempDir(), "short.safetensors");
  await Deno.writeFile(path, new Uint8Array(5));
  await rejects(path, "5 bytes", "shorter than");
});

Deno.test("an empty file is rejected", async () => {
  const path = join(await Deno.makeTempDir(), "empty.safetensors");
  await Deno.writeFile(path, new Uint8Array(0));
  await rejects(path, "0 bytes");
});

Deno.test("a header length past the end of the file (truncated header) is rejected", async () => {
  const path = await raw({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, 0, 5000n);
  await rejects(path, "header length 5000", "runs past the end of the file");
});

Deno.test("an absurd header length is rejected before reading it", async () => {
  const path = await raw("{}", 0, BigInt(MAX_HEADER_BYTES) + 1n);
  await rejects(path, `${MAX_HEADER_BYTES + 1}`, "larger than");
  const huge = await raw("{}", 0, 0xffff_ffff_ffff_ffffn);
  await rejects(huge, "18446744073709551615");
});

Deno.test("a header that is not JSON is rejected", async () => {
  await rejects(await raw("{not json", 0), "not valid JSON");
});

Deno.test("a header that is not UTF-8 is rejected", async () => {
  const path = join(await Deno.makeTempDir(), "bad.safetensors");
  const bytes = new Uint8Array([4, 0, 0, 0, 0, 0, 0, 0, 0x22, 0xff, 0xfe, 0x22]);
  await Deno.writeFile(path, bytes);
  await rejects(path, "UTF-8");
});

Deno.test("a header that is a JSON array is rejected", async () => {
  await rejects(await raw("[1, 2]", 0), "not a JSON object");
});

Deno.test("an entry missing a key is rejected, naming the tensor and key", async () => {
  await rejects(await raw({ w: { dtype: "F32", shape: [1] } }, 4), "tensor w", "no data_offsets");
  await rejects(await raw({ w: { shape: [1], data_offsets: [0, 4] } }, 4), "tensor w", "no dtype");
  await rejects(await raw({ w: { dtype: "F32", data_offsets: [0, 4] } }, 4), "tensor w", "no shape");
  await rejects(await raw({ w: 3 }, 4), "tensor w", "must be an object");
});

Deno.test("entries of the wrong types are rejected", async () => {
  await rejects(await raw({ w: { dtype: 7, shape: [1], data_offsets: [0, 4] } }, 4), "tensor w", "dtype");
  await rejects(await raw({ w: { dtype: "F32", shape: "1", data_offsets: [0, 4] } }, 4), "tensor w", "shape");
  await rejects(
    await raw({ w: { dtype: "F32", shape: [1], data_offsets: "0-4" } }, 4),
    "tensor w",
    "data_offsets must be [begin, end]",
  );
  await rejects(
    await raw({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4, 8] } }, 8),
    "tensor w",
    "data_offsets",
  );
});

Deno.test("negative or fractional dims are rejected", async () => {
  await rejects(
    await raw({ w: { dtype: "F32", shape: [-1, 1], data_offsets: [0, 4] } }, 4),
    "tensor w",
    "-1",
  );
  await rejects(await raw({ w: { dtype: "F32", shape: [1.5], data_offsets: [0, 6] } }, 6), "tensor w", "1.5");
});

Deno.test("data_offsets with begin after end are rejected", async () => {
  await rejects(
    await raw({ w: { dtype: "F32", shape: [1], data_offsets: [8, 4] } }, 8),
    "tensor w",
    "[8, 4]",
  );
});

Deno.test("data_offsets past the end of the file are rejected with the numbers", async () => {
  // What a truncated download looks like: the header is whole, the data is cut short.
  const path = await raw({
    ok: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    w: { dtype: "F32", shape: [4], data_offsets: [8, 24] },
  }, 20);
  await rejects(path, "tensor w", "runs past the end of the file", "[8, 24]", "bytes)");
});

Deno.test("a byte count that does not match shape × dtype size is rejected", async () => {
  await rejects(
    await raw({ w: { dtype: "BF16", shape: [3, 2], data_offsets: [0, 24] } }, 24),
    "tensor w",
    "24 bytes",
    "needs 12",
  );
});

Deno.test("unsupported dtypes are rejected naming dtype, tensor, file and the supported ones", async () => {
  for (const [dtype, size] of [["F64", 8], ["I8", 1], ["U8", 1], ["F8_E4M3", 1], ["I64", 8]] as const) {
    const path = await raw(
      { "model.norm.weight": { dtype, shape: [2], data_offsets: [0, 2 * size] } },
      2 * size,
    );
    await rejects(
      path,
      `unsupported dtype ${dtype} for tensor model.norm.weight in file ${path}; supported: F32, F16, BF16`,
    );
  }
});

Deno.test("unknown dtypes are rejected as unknown", async () => {
  const path = await raw({ w: { dtype: "Q4_K", shape: [2], data_offsets: [0, 2] } }, 2);
  await rejects(path, "unknown dtype Q4_K for tensor w", "supported: F32, F16, BF16");
});

Deno.test("__metadata__ must be a string map", async () => {
  await rejects(await raw({ __metadata__: { format: 1 } }, 0), "__metadata__.format");
  await rejects(await raw({ __metadata__: [] }, 0), "__metadata__");
  const h = await readSafetensorsHeader(await raw({ __metadata__: null }, 0));
  assert.deepEqual(h.metadata, {});
});

Deno.test("parseSafetensorsHeader validates without a file", () => {
  const bytes = new TextEncoder().encode(
    JSON.stringify({ x: { dtype: "F16", shape: [2], data_offsets: [0, 4] } }),
  );
  const h = parseSafetensorsHeader("mem", bytes, 8 + bytes.length + 4);
  assert.equal(h.tensors.get("x")!.offset, 8 + bytes.length);
  assert.throws(() => parseSafetensorsHeader("mem", bytes, 8 + bytes.length + 3), /runs past the end/);
});

Deno.test("setAsideUnsupported keeps other dtypes apart, still bounds-checked", async () => {
  const path = await raw({
    w: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    ids: { dtype: "I64", shape: [2], data_offsets: [8, 24] },
    packed: { dtype: "F4", shape: [3], data_offsets: [24, 26] },
  }, 26);
  const h = await readSafetensorsHeader(path, { setAsideUnsupported: true });
  assert.deepEqual([...h.tensors.keys()], ["w"]);
  assert.deepEqual([...h.unsupported.keys()], ["ids", "packed"]);
  assert.equal(h.unsupported.get("ids")!.dtype, "I64");
  assert.equal(h.unsupported.get("ids")!.nbytes, 16);
  assert.equal(h.unsupported.get("packed")!.nbytes, 2);
  const short = await raw({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, 15);
  await assert.rejects(readSafetensorsHeader(short, { setAsideUnsupported: true }), /runs past the end/);
});
