import assert from "node:assert/strict";
import { join } from "node:path";
import { readGgufHeader, readGgufTensorBytes } from "./gguf.ts";
import { tempGguf } from "./gguf_test_util.ts";
import { bf16Bits, f16Bits, ggmlTensorBytes, randomTensorData, writeGguf } from "./gguf_write.ts";

/** f16 bits to a number. */
function f16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1, exp = (bits >> 10) & 0x1f, mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

Deno.test("f16Bits and bf16Bits round to nearest even", () => {
  assert.equal(f16Bits(1), 0x3c00);
  assert.equal(f16Bits(-2), 0xc000);
  assert.equal(f16Bits(65504), 0x7bff);
  assert.equal(f16Bits(1e6), 0x7c00);
  assert.equal(f16Bits(2 ** -24), 0x0001);
  assert.equal(f16Bits(0.1), 0x2e66);
  assert.equal(f16Bits(1 + 2 ** -11), 0x3c00); // tie: even
  assert.equal(f16Bits(1 + 3 * 2 ** -11), 0x3c02);
  for (const x of [0.5, 3.25, -0.001, 6e-5, 1234.5]) {
    assert.ok(Math.abs(f16(f16Bits(x)) - x) <= Math.abs(x) * 2 ** -11);
  }
  assert.equal(bf16Bits(1), 0x3f80);
  assert.equal(bf16Bits(-1.5), 0xbfc0);
});

Deno.test("tensor data streams from chunks and lands at its offset", async () => {
  async function* chunks() {
    for (let i = 0; i < 4; i++) yield new Uint8Array(1000).fill(i + 1);
  }
  const path = await tempGguf({
    tensors: [
      { name: "a", dims: [1000], type: "F32", data: chunks() },
      { name: "b", dims: [3], type: "F16", data: [new Uint16Array([1]), new Uint16Array([2, 3])] },
    ],
  });
  const h = await readGgufHeader(path);
  const a = await readGgufTensorBytes(h, h.tensors[0]);
  assert.deepEqual([a[0], a[999], a[1000], a[3999]], [1, 1, 2, 4]);
  assert.deepEqual(
    new Uint16Array((await readGgufTensorBytes(h, h.tensors[1])).buffer),
    new Uint16Array([1, 2, 3]),
  );
  assert.equal(h.tensors[1].relativeOffset, 4000);
});

Deno.test("data of the wrong size is refused", async () => {
  const path = join(await Deno.makeTempDir(), "bad.gguf");
  await assert.rejects(
    writeGguf(path, { tensors: [{ name: "t", dims: [32, 2], type: "Q4_0", data: new Uint8Array(35) }] }),
    /tensor t got 35 bytes of data; dims \[32,2\] of Q4_0 need 36/,
  );
  await assert.rejects(
    writeGguf(path, { tensors: [{ name: "t", dims: [4], type: "F32", data: new Uint8Array(17) }] }),
    /got more than 16 bytes/,
  );
});

Deno.test("randomTensorData: exact sizes, finite scales, deterministic", () => {
  const layouts: Record<string, number[]> = {
    Q4_0: [0],
    Q4_1: [0, 2],
    Q5_0: [0],
    Q5_1: [0, 2],
    Q8_0: [0],
    Q2_K: [80, 82],
    Q3_K: [108],
    Q4_K: [0, 2],
    Q5_K: [0, 2],
    Q6_K: [208],
  };
  for (const [type, scales] of Object.entries(layouts)) {
    const dims = [512, 3];
    const chunks = [...randomTensorData(type, dims, { chunkBytes: 1000 })];
    const total = chunks.reduce((n, c) => n + c.length, 0);
    assert.equal(total, ggmlTensorBytes(type, dims), type);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) bytes.set(c, (at += c.length) - c.length);
    const block = ggmlTensorBytes(type, [type.endsWith("_K") ? 256 : 32]);
    const view = new DataView(bytes.buffer);
    for (let b = 0; b < total; b += block) {
      for (const off of scales) {
        const v = f16(view.getUint16(b + off, true));
        assert.ok(Number.isFinite(v) && v !== 0 && Math.abs(v) <= 0.05, `${type} scale ${v}`);
      }
    }
    assert.deepEqual(
      [...randomTensorData(type, dims, { chunkBytes: 1000 })],
      chunks,
      `${type} deterministic`,
    );
  }
  const f32 = new Float32Array([...randomTensorData("F32", [256], { amplitude: 0.5 })][0].buffer);
  assert.ok(f32.every((x) => Math.abs(x) <= 0.5) && new Set(f32).size > 200);
  assert.throws(() => [...randomTensorData("IQ2_XXS", [256])], /not one hearth computes with/);
});
