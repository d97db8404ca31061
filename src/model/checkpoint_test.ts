import assert from "node:assert/strict";
import { join } from "node:path";
import { expectedLocation, INDEX_FILE, readCheckpoint } from "./checkpoint.ts";
import { ModelFormatError } from "./errors.ts";
import { writeSafetensors } from "./safetensors_write.ts";
import { writeTinyModel } from "./test_util.ts";

async function rejects(dir: string, ...parts: string[]) {
  await assert.rejects(readCheckpoint(dir), (e: unknown) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${e}`);
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

const f32 = (n: number) => ({ dtype: "F32", shape: [n], data: new Float32Array(n) });

Deno.test("a single model.safetensors", async () => {
  const dir = await Deno.makeTempDir();
  const { tensors } = await writeTinyModel(dir);
  const c = await readCheckpoint(dir);
  assert.equal(c.layout, "single");
  assert.deepEqual(c.files, [join(dir, "model.safetensors")]);
  assert.deepEqual([...c.tensors.keys()], [...tensors.keys()]);
  assert.ok([...c.tensors.values()].every((t) => t.file === 0));
  assert.equal(expectedLocation(c, "x"), join(dir, "model.safetensors"));
});

Deno.test("a sharded checkpoint with an index", async () => {
  const dir = await Deno.makeTempDir();
  const { tensors } = await writeTinyModel(dir, { shards: 3 });
  const c = await readCheckpoint(dir);
  assert.equal(c.layout, "index");
  assert.equal(c.files.length, 3);
  assert.equal(c.tensors.size, tensors.size);
  const index = JSON.parse(await Deno.readTextFile(join(dir, INDEX_FILE)));
  for (const [name, shard] of Object.entries(index.weight_map)) {
    const t = c.tensors.get(name)!;
    assert.equal(c.files[t.file], join(dir, shard as string));
    assert.deepEqual(t.info.shape, tensors.get(name)!.shape);
  }
  assert.equal(
    expectedLocation(c, "model.norm.weight"),
    join(dir, index.weight_map["model.norm.weight"]),
  );
  assert.match(expectedLocation(c, "nope"), /does not list it/);
});

Deno.test("an index pointing at a missing shard is rejected, naming shard and tensor", async () => {
  const dir = await Deno.makeTempDir();
  await writeTinyModel(dir, { shards: 2 });
  const shard = "model-00002-of-00002.safetensors";
  await Deno.remove(join(dir, shard));
  await rejects(dir, join(dir, INDEX_FILE), `shard ${shard}`, "does not exist", "listed for model.");
});

Deno.test("an index naming a tensor its shard lacks is rejected", async () => {
  const dir = await Deno.makeTempDir();
  await writeSafetensors(join(dir, "a.safetensors"), { x: f32(2) });
  await Deno.writeTextFile(
    join(dir, INDEX_FILE),
    JSON.stringify({ weight_map: { x: "a.safetensors", y: "a.safetensors" } }),
  );
  await rejects(dir, `lists tensor y in ${join(dir, "a.safetensors")}`, "has no y");
});

Deno.test("a malformed index is rejected naming the file", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, INDEX_FILE), "{ weight_map: ");
  await rejects(dir, join(dir, INDEX_FILE), "not valid JSON");
  await Deno.writeTextFile(join(dir, INDEX_FILE), JSON.stringify({ metadata: {} }));
  await rejects(dir, "weight_map must be an object");
  await Deno.writeTextFile(join(dir, INDEX_FILE), JSON.stringify({ weight_map: { w: 3 } }));
  await rejects(dir, "weight_map.w must be a shard file name");
  await Deno.writeTextFile(join(dir, INDEX_FILE), JSON.stringify({ weight_map: { w: "../x.safetensors" } }));
  await rejects(dir, "outside the model directory");
});

Deno.test("model.safetensors wins over an index", async () => {
  const dir = await Deno.makeTempDir();
  await writeSafetensors(join(dir, "model.safetensors"), { x: f32(1) });
  await Deno.writeTextFile(join(dir, INDEX_FILE), JSON.stringify({ weight_map: { y: "gone.safetensors" } }));
  const c = await readCheckpoint(dir);
  assert.equal(c.layout, "single");
  assert.deepEqual([...c.tensors.keys()], ["x"]);
});

Deno.test("several *.safetensors files without an index are read in name order", async () => {
  const dir = await Deno.makeTempDir();
  await writeSafetensors(join(dir, "b.safetensors"), { y: f32(2) });
  await writeSafetensors(join(dir, "a.safetensors"), { x: f32(1) });
  const c = await readCheckpoint(dir);
  assert.equal(c.layout, "files");
  assert.deepEqual(c.files, [join(dir, "a.safetensors"), join(dir, "b.safetensors")]);
  assert.equal(c.tensors.get("y")!.file, 1);
  assert.match(expectedLocation(c, "z"), /^any of /);
});

Deno.test("the same tensor in two files without an index is rejected", async () => {
  const dir = await Deno.makeTempDir();
  await writeSafetensors(join(dir, "a.safetensors"), { x: f32(1) });
  await writeSafetensors(join(dir, "b.safetensors"), { x: f32(1) });
  await rejects(dir, "tensor x is in both", "a.safetensors", "b.safetensors");
});

Deno.test("a directory without weights is rejected", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "config.json"), "{}");
  await rejects(dir, `no model.safetensors or model.safetensors.index.json`, dir);
  await Deno.writeFile(join(dir, "pytorch_model.bin"), new Uint8Array(4));
  await rejects(dir, "found pytorch_model.bin");
});

Deno.test("a missing directory is rejected", async () => {
  const dir = join(await Deno.makeTempDir(), "nope");
  await rejects(dir, `model directory ${dir} does not exist`);
});

Deno.test("a bad shard header is reported with the shard's path", async () => {
  const dir = await Deno.makeTempDir();
  await writeTinyModel(dir, { shards: 2 });
  const shard = join(dir, "model-00001-of-00002.safetensors");
  const size = (await Deno.stat(shard)).size;
  await Deno.truncate(shard, size - 10);
  await rejects(dir, shard, "runs past the end of the file");
});
