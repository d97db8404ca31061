import { assert, assertEquals } from "../../test/assert.ts";
import { describeModelPath, isGgufPath } from "./describe.ts";
import { tinyGgufModel } from "./gguf_test_util.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("describeModelPath: a Hugging Face directory", async () => {
  const d = await describeModelPath(`${ROOT}test/fixtures/models/qwen2-f32`);
  assertEquals(d.description.config.architecture, "Qwen2ForCausalLM");
  assertEquals(d.tokenizer, null, "a directory's tokenizer.json is the caller's to load");
  assertEquals(await isGgufPath(`${ROOT}test/fixtures/models/qwen2-f32`), false);
});

Deno.test("describeModelPath: a GGUF file, by extension or by magic", async () => {
  const spm = `${ROOT}test/fixtures/gguf/spm-tiny.gguf`;
  assert(await isGgufPath(spm));
  const dir = await Deno.makeTempDir();
  try {
    const noExt = `${dir}/model.bin`;
    await Deno.copyFile(spm, noExt);
    assert(await isGgufPath(noExt), "recognised by its magic");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("describeModelPath: a GGUF model brings its tokenizer", async () => {
  const path = await tinyGgufModel();
  try {
    const d = await describeModelPath(path);
    assertEquals(d.description.config.nLayers, 2);
    assert(d.tokenizer !== null);
    assertEquals((await describeModelPath(path, { tokenizer: false })).tokenizer, null);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
});
