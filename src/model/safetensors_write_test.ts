import assert from "node:assert/strict";
import { join } from "node:path";
import { readSafetensorsHeader } from "./safetensors.ts";
import { encodeSafetensorsHeader, writeSafetensors } from "./safetensors_write.ts";

Deno.test("written files read back with the same tensors and bytes", async () => {
  const path = join(await Deno.makeTempDir(), "w.safetensors");
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  const b = new Uint16Array([7, 8, 9]);
  await writeSafetensors(path, {
    a: { dtype: "F32", shape: [2, 3], data: a },
    b: { dtype: "bf16", shape: [3], data: b },
  }, { metadata: { format: "pt" } });
  const h = await readSafetensorsHeader(path);
  assert.equal(h.dataStart % 8, 0, "data must start 8-byte aligned");
  assert.deepEqual(h.metadata, { format: "pt" });
  const bytes = await Deno.readFile(path);
  const ia = h.tensors.get("a")!;
  const ib = h.tensors.get("b")!;
  assert.equal(ia.dtype, "f32");
  assert.equal(ib.dtype, "bf16");
  assert.deepEqual(new Float32Array(bytes.slice(ia.offset, ia.offset + ia.nbytes).buffer), a);
  assert.deepEqual(new Uint16Array(bytes.slice(ib.offset, ib.offset + ib.nbytes).buffer), b);
  assert.equal(bytes.length, ib.offset + ib.nbytes);
});

Deno.test("data may come in chunks from a generator", async () => {
  const path = join(await Deno.makeTempDir(), "chunks.safetensors");
  async function* chunks() {
    for (let i = 0; i < 4; i++) yield new Uint8Array(1000).fill(i);
  }
  await writeSafetensors(path, new Map([["w", { dtype: "F16", shape: [2000], data: chunks() }]]));
  const h = await readSafetensorsHeader(path);
  const w = h.tensors.get("w")!;
  const bytes = await Deno.readFile(path);
  assert.equal(w.nbytes, 4000);
  for (let i = 0; i < 4; i++) assert.equal(bytes[w.offset + i * 1000 + 999], i);
});

Deno.test("data of the wrong size is an error", async () => {
  const path = join(await Deno.makeTempDir(), "bad.safetensors");
  await assert.rejects(
    writeSafetensors(path, { w: { dtype: "F32", shape: [4], data: new Uint8Array(15) } }),
    /tensor w got 15 bytes of data.*needs 16/,
  );
  await assert.rejects(
    writeSafetensors(path, { w: { dtype: "F32", shape: [1], data: [new Uint8Array(4), new Uint8Array(1)] } }),
    /more than 4/,
  );
});

Deno.test("unknown dtypes are an error", () => {
  assert.throws(() => encodeSafetensorsHeader([["w", { dtype: "F12", shape: [1] }]]), /unknown dtype F12/);
});

Deno.test("unsupported dtypes can be written (for tests of the reader)", async () => {
  const path = join(await Deno.makeTempDir(), "f64.safetensors");
  await writeSafetensors(path, { w: { dtype: "F64", shape: [2], data: new Float64Array([1, 2]) } });
  await assert.rejects(readSafetensorsHeader(path), /unsupported dtype F64/);
});
