import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { chunksOf, type TensorBytes, writeAll } from "./tensor_bytes.ts";

async function bytesOf(data: TensorBytes): Promise<number[]> {
  const out: number[] = [];
  for await (const c of chunksOf(data)) out.push(...c);
  return out;
}

Deno.test("chunksOf: one view (its own window of the buffer), chunks in order, async chunks", async () => {
  const buf = new Uint8Array([9, 1, 2, 3, 9]);
  assertEquals(await bytesOf(buf.subarray(1, 4)), [1, 2, 3]);
  assertEquals(await bytesOf(new Uint16Array([0x0201])), [1, 2]);
  assertEquals(await bytesOf([new Uint8Array([1]), new Uint8Array([2, 3])]), [1, 2, 3]);
  const later = async function* () {
    yield new Uint8Array([4]);
    yield new Float32Array([0]);
  };
  assertEquals(await bytesOf(later()), [4, 0, 0, 0, 0]);
});

Deno.test("writeAll writes every byte", async () => {
  const path = await Deno.makeTempFile();
  const bytes = new Uint8Array(1 << 20).map((_, i) => i % 251);
  using file = await Deno.open(path, { write: true });
  await writeAll(file, bytes);
  assertEquals(await Deno.readFile(path), bytes);
  await Deno.remove(path);
});
