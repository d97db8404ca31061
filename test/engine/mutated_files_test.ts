/**
 * Model files with random damage, seeded: bytes of a GGUF header overwritten, 4- and 8-byte fields set
 * to extreme values, files cut short; safetensors headers with odd offsets, shapes, dtypes, header
 * lengths and data cut short; config.json values replaced by odd ones. Every case either loads and
 * generates, or fails with an error that names the problem (ModelFormatError, ModelConfigError from the
 * TypeScript side, NativeError from the native one). Never another exception, a hang, a crash of the
 * native side or a JavaScript heap exhausted by a size taken on trust: this is how the 2^32-layer
 * config and the unpadded safetensors header (test/engine/unaligned_test.ts) were found.
 */
import { assert } from "../assert.ts";
import { join } from "node:path";
import { Engine } from "../../src/engine/engine.ts";
import { ModelConfigError, ModelFormatError } from "../../src/model/errors.ts";
import { readGgufHeader } from "../../src/model/gguf.ts";
import { tinyGgufModel } from "../../src/model/gguf_test_util.ts";
import { NativeError } from "../../src/native/hearth.ts";
import { FIXTURES } from "./fixtures.ts";

const CASES = 600;

/** A seeded generator of floats in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** "loaded" or the error's class; throws for any error that does not name the problem. */
async function outcome(path: string, what: string): Promise<string> {
  try {
    const engine = await Engine.load(path, { threads: 1, maxModelLen: 64, kvCacheTokens: 128 });
    try {
      for await (const _ of engine.generate([1, 2, 3], { maxTokens: 2, temperature: 0 })) { /**/ }
    } finally {
      await engine.close();
    }
    return "loaded";
  } catch (e) {
    if (e instanceof ModelFormatError || e instanceof ModelConfigError || e instanceof NativeError) {
      assert(e.message.length > 0, `${what}: an empty message`);
      return e.constructor.name;
    }
    throw new Error(`${what}: ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
  }
}

function tally(counts: Map<string, number>, key: string) {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

Deno.test(`mutated GGUF files: ${CASES} seeded cases load or fail with a named error`, async () => {
  const source = await tinyGgufModel({ weightType: "Q8_0" });
  const orig = await Deno.readFile(source);
  const headerEnd = (await readGgufHeader(source)).dataOffset;
  const dir = await Deno.makeTempDir({ prefix: "hearth-mutated-" });
  const path = join(dir, "model.gguf");
  const rnd = lcg(7);
  const counts = new Map<string, number>();
  try {
    for (let i = 0; i < CASES; i++) {
      let bytes = orig.slice();
      const view = new DataView(bytes.buffer);
      const at = (span: number) => Math.floor(rnd() * (headerEnd - span));
      let what: string;
      switch (i % 4) {
        case 0: {
          const o = at(1), v = Math.floor(rnd() * 256);
          bytes[o] = v;
          what = `byte ${o} = ${v}`;
          break;
        }
        case 1: {
          const o = at(4) & ~3, v = Math.floor(rnd() * 2 ** 32);
          view.setUint32(o, v, true);
          what = `u32 at ${o} = ${v}`;
          break;
        }
        case 2: {
          const o = at(8), v = [2n ** 64n - 1n, 2n ** 63n, 2n ** 32n + 1n][i % 3];
          view.setBigUint64(o, v, true);
          what = `u64 at ${o} = ${v}`;
          break;
        }
        default: {
          const n = Math.floor(rnd() * orig.length);
          bytes = bytes.slice(0, n);
          what = `cut at ${n}`;
        }
      }
      await Deno.writeFile(path, bytes);
      tally(counts, await outcome(path, `case ${i}, ${what}`));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // The damage reaches both kinds of check, and some cases are harmless (a byte of a name, a value).
  assert((counts.get("ModelFormatError") ?? 0) > 0, JSON.stringify([...counts]));
  assert((counts.get("loaded") ?? 0) > 0, JSON.stringify([...counts]));
});

Deno.test(`mutated safetensors checkpoints: ${CASES} seeded cases load or fail with a named error`, async () => {
  const src = join(FIXTURES, "models", "llama-f16");
  const orig = await Deno.readFile(join(src, "model.safetensors"));
  const size = Number(new DataView(orig.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(orig.subarray(8, 8 + size)));
  const data = orig.subarray(8 + size);
  const config = JSON.parse(await Deno.readTextFile(join(src, "config.json")));
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const dir = await Deno.makeTempDir({ prefix: "hearth-mutated-" });
  for (const f of Deno.readDirSync(src)) {
    if (f.name !== "model.safetensors" && f.name !== "config.json") {
      await Deno.copyFile(join(src, f.name), join(dir, f.name));
    }
  }
  const rnd = lcg(11);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const odd = () =>
    pick<unknown>([-1, 0, 1, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 1e300, 1.5, "7", null, [], {}, true]);
  const counts = new Map<string, number>();
  try {
    for (let i = 0; i < CASES; i++) {
      const h = structuredClone(header), cfg = structuredClone(config), t = pick(names);
      let body = data, declared: bigint | null = null, what: string;
      switch (i % 6) {
        case 0: {
          const k = i % 2;
          h[t].data_offsets[k] = odd();
          what = `${t} data_offsets[${k}] = ${JSON.stringify(h[t].data_offsets[k])}`;
          break;
        }
        case 1:
          if (rnd() < 0.7) h[t].shape[Math.floor(rnd() * h[t].shape.length)] = odd();
          else h[t].shape = pick<unknown>([[], [1], [2 ** 31, 2 ** 31], null, "x", [1, 2, 3, 4, 5]]);
          what = `${t} shape = ${JSON.stringify(h[t].shape)}`;
          break;
        case 2:
          h[t].dtype = pick(["F32", "BF16", "I8", "F64", "I64", "BOOL", "F8_E4M3", "Q4", "", 3]);
          what = `${t} dtype = ${JSON.stringify(h[t].dtype)}`;
          break;
        case 3: {
          const k = pick(Object.keys(cfg));
          cfg[k] = odd();
          what = `config ${k} = ${JSON.stringify(cfg[k])}`;
          break;
        }
        case 4:
          body = data.subarray(0, Math.floor(rnd() * data.length));
          what = `data cut to ${body.length} bytes`;
          break;
        default:
          declared = pick([0n, 1n, 2n ** 63n, 2n ** 64n - 1n, 100_000_000n]);
          what = `header length ${declared}`;
      }
      // Written unpadded: the data starts wherever the header ends (odd offsets included).
      const json = new TextEncoder().encode(JSON.stringify(h));
      const out = new Uint8Array(8 + json.length + body.length);
      new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(json.length), true);
      out.set(json, 8);
      out.set(body, 8 + json.length);
      await Deno.writeFile(join(dir, "model.safetensors"), out);
      await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(cfg));
      tally(counts, await outcome(dir, `case ${i}, ${what}`));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert((counts.get("ModelFormatError") ?? 0) > 0, JSON.stringify([...counts]));
  assert((counts.get("ModelConfigError") ?? 0) > 0, JSON.stringify([...counts]));
  assert((counts.get("loaded") ?? 0) > 0, JSON.stringify([...counts]));
});
