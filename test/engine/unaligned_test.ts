/**
 * Weights at any offset in their file. The safetensors format does not ask for its data to be aligned:
 * the writers pad the header to 8 bytes, but not every published checkpoint has it (the data of some
 * starts at an odd offset, so every f16/bf16 element is misaligned), and a GGUF may declare an alignment
 * of 1. Such tensors are copied to aligned memory at load (model_desc.c, hearth_realign_source) and give
 * the same logits, bit for bit, as the same weights at aligned offsets: as stored, converted at load,
 * mapped or in memory.
 */
import { assert, assertEquals } from "../assert.ts";
import { join } from "node:path";
import { LogitsMode, StepBatch } from "../../src/native/hearth.ts";
import { readSafetensorsHeader } from "../../src/model/safetensors.ts";
import { readGgufHeader } from "../../src/model/gguf.ts";
import { tinyGgufModel } from "../../src/model/gguf_test_util.ts";
import { gv } from "../../src/model/gguf_write.ts";
import type { WeightDType } from "../../src/model/description.ts";
import { FIXTURES, openFixture } from "./fixtures.ts";

/** `src` (a fixture directory) copied with every safetensors file's data moved to an odd offset. */
async function withOddDataStart(src: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hearth-unaligned-" });
  for (const f of Deno.readDirSync(src)) {
    if (!f.name.endsWith(".safetensors")) {
      await Deno.copyFile(join(src, f.name), join(dir, f.name));
      continue;
    }
    const bytes = await Deno.readFile(join(src, f.name));
    const size = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    let json = new TextDecoder().decode(bytes.subarray(8, 8 + size)).trimEnd();
    if ((8 + new TextEncoder().encode(json).length) % 2 === 0) json += " "; // the header's own padding
    const header = new TextEncoder().encode(json);
    const out = new Uint8Array(8 + header.length + bytes.length - 8 - size);
    new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
    out.set(header, 8);
    out.set(bytes.subarray(8 + size), 8 + header.length);
    await Deno.writeFile(join(dir, f.name), out);
  }
  return dir;
}

/** Logits at every position of two sequences in one step, of the model at `path` (a directory or a GGUF). */
async function logits(path: string, dtype: WeightDType | "auto", inMemory: boolean): Promise<Float32Array> {
  const { model, ctx, close } = await openFixture(path, { dtype, inMemory });
  try {
    const vocab = model.config.vocabSize;
    const batch = new StepBatch(ctx.options, vocab);
    batch.clear(LogitsMode.all);
    batch.addSequence([1, 5, 9, 33, 2, 17, 60], 0, [0], null);
    batch.addSequence([4, 8, 15, 16, 23], 0, [1], null);
    await ctx.step(batch);
    return batch.outLogits!.slice(0, 12 * vocab);
  } finally {
    close();
  }
}

for (const name of ["llama-f32", "llama-f16", "llama-bf16", "qwen2-sharded-f32"]) {
  Deno.test(`weights at odd offsets: ${name}, as stored and converted, mapped and in memory`, async () => {
    const src = join(FIXTURES, "models", name);
    const odd = await withOddDataStart(src);
    try {
      for (const f of Deno.readDirSync(odd)) {
        if (!f.name.endsWith(".safetensors")) continue;
        const h = await readSafetensorsHeader(join(odd, f.name));
        assert(h.dataStart % 2 === 1, `${f.name}: data starts at ${h.dataStart}, meant to be odd`);
      }
      for (const dtype of ["auto", "f16", "q8_0"] as const) {
        for (const inMemory of [false, true]) {
          const want = await logits(src, dtype, inMemory);
          const got = await logits(odd, dtype, inMemory);
          assert(want.some((x) => x !== 0), "the logits are not all zero");
          assertEquals(got, want, `${name}, ${dtype}, ${inMemory ? "in memory" : "mapped"}`);
        }
      }
    } finally {
      await Deno.remove(odd, { recursive: true });
    }
  });
}

Deno.test("weights at odd offsets: a GGUF of alignment 1 (F16 and Q8_0) against the same at 32", async () => {
  for (const weightType of ["F16", "Q8_0"]) {
    const aligned = await tinyGgufModel({ weightType, noTokenizer: true });
    // The name's length moves the data section: one of the two lengths puts it at an odd offset.
    let packed = "";
    for (const name of ["tiny", "tiny1"]) {
      packed = await tinyGgufModel({
        weightType,
        noTokenizer: true,
        metadata: { "general.alignment": gv.u32(1), "general.name": gv.str(name) },
      });
      const h = await readGgufHeader(packed);
      if (h.tensors.some((t) => t.offset % 2 === 1)) break;
      packed = "";
    }
    assert(packed !== "", "no tensor of the alignment-1 file is at an odd offset");
    for (const inMemory of [false, true]) {
      assertEquals(await logits(packed, "auto", inMemory), await logits(aligned, "auto", inMemory));
    }
  }
});
