import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { CONFIG_KEYS, ConfigError, expandHome, loadConfigFile, resolveConfig } from "./config.ts";

Deno.test("defaults are the seed server's", () => {
  const c = resolveConfig({ model: "models/tiny" }, {});
  assertEquals([c.host, c.port, c.device, c.dtype, c.logLevel, c.logFormat], [
    "127.0.0.1",
    8137,
    "auto",
    "auto",
    "INFO",
    "text",
  ]);
  assertEquals(c.servedModelName, "tiny");
  assertEquals(c.model, join(Deno.cwd(), "models/tiny"));
  assertEquals([c.noAuth, c.ignoreEos, c.stopSequences, c.corsOrigins], [false, false, [], []]);
});

Deno.test("flags override the file", () => {
  const c = resolveConfig({ model: "a", port: 1, "stop-sequences": "END" }, {
    port: 2,
    "log-level": "debug",
  });
  assertEquals([c.port, c.logLevel, c.stopSequences], [2, "DEBUG", ["END"]]);
});

Deno.test("an unknown key is an error naming it", () => {
  assertThrows(
    () => resolveConfig({ model: "a", "stop-sequence": ["x"] }, {}, "server.yaml"),
    (e: Error) =>
      e instanceof ConfigError && e.message.includes("'stop-sequence'") && e.message.includes("server.yaml"),
  );
});

Deno.test("a mistyped value names the key and where it came from", () => {
  assertThrows(() => resolveConfig({ model: "a", port: "http" }, {}, "server.yaml"), /'port' in server.yaml/);
  assertThrows(() => resolveConfig({ model: "a" }, { "log-level": "LOUD" }), /'log-level' in --log-level/);
  assertThrows(() => resolveConfig({ model: "a", device: "tpu" }, {}), /'device'/);
  assertThrows(() => resolveConfig({}, {}), /'model' is required/);
});

Deno.test("YAML files load; bad YAML and non-mappings are errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "ok.yaml"), "model: /m\nstop-sequences:\n  - The end\n");
    assertEquals(await loadConfigFile(join(dir, "ok.yaml")), { model: "/m", "stop-sequences": ["The end"] });
    await Deno.writeTextFile(join(dir, "list.yaml"), "- a\n- b\n");
    await assertRejects(loadConfigFile(join(dir, "list.yaml")), ConfigError);
    await Deno.writeTextFile(join(dir, "bad.yaml"), "model: [unclosed\n");
    await assertRejects(loadConfigFile(join(dir, "bad.yaml")), /not valid YAML/);
    await Deno.writeTextFile(join(dir, "empty.yaml"), "");
    assertEquals(await loadConfigFile(join(dir, "empty.yaml")), {});
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("~ in path keys is the home directory, as a shell would expand it", () => {
  const home = Deno.env.get("HOME")!;
  const c = resolveConfig({
    model: "~/models/tiny",
    "auth-token-file": "~/.hearth-token",
    "chat-template": "~/templates/chatml.jinja",
  }, {});
  assertEquals(c.model, join(home, "models/tiny"));
  assertEquals(c.servedModelName, "tiny");
  assertEquals(c.authTokenFile, join(home, ".hearth-token"));
  assertEquals(c.chatTemplate, join(home, "templates/chatml.jinja"));
  // A named template or inline Jinja is not a path and stays as it is.
  assertEquals(resolveConfig({ model: "/m", "chat-template": "tool_use" }, {}).chatTemplate, "tool_use");
  assertEquals(expandHome("~", "/h"), "/h");
  assertEquals(expandHome("~user/x", "/h"), "~user/x");
  assertEquals(expandHome("a/~/b", "/h"), "a/~/b");
});

Deno.test("the example server.yaml is valid, and so is each key it shows commented out", async () => {
  const path = fileURLToPath(new URL("../../server.yaml", import.meta.url));
  const values = await loadConfigFile(path);
  const config = resolveConfig(values, {}, "server.yaml");
  assertEquals(config.port, 8137);
  const commented = (await Deno.readTextFile(path)).split("\n")
    .map((line) => /^#\s*([a-z][a-z0-9-]*:\s.*)$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined);
  assert(commented.length >= 5, `expected commented-out examples, found ${commented.length}`);
  for (const line of commented) {
    const example = parseYaml(line) as Record<string, unknown>;
    for (const key of Object.keys(example)) assert(CONFIG_KEYS.includes(key as never), `unknown key ${key}`);
    // Each example on its own, over the file's values, must validate.
    resolveConfig({ ...values, ...example }, {}, `server.yaml (commented-out ${line})`);
  }
});

Deno.test("kv-cache-dtype: auto by default, aliases normalised, anything else names the flag", () => {
  assertEquals(resolveConfig({ model: "a" }, {}).kvCacheDtype, "auto");
  for (
    const [given, want] of [["fp16", "float16"], ["f16", "float16"], ["float32", "float32"], [
      "f32",
      "float32",
    ]]
  ) {
    assertEquals(resolveConfig({ model: "a" }, { "kv-cache-dtype": given }).kvCacheDtype, want);
  }
  assertThrows(
    () => resolveConfig({ model: "a" }, { "kv-cache-dtype": "bf16" }),
    (e: Error) => e instanceof ConfigError && e.message.includes("--kv-cache-dtype"),
  );
});

Deno.test("mmap / no-mmap: decided by size by default, a flag and a key either way, the flag's word first", () => {
  assertEquals(resolveConfig({ model: "a" }, {}).weightsInMemory, "auto");
  assertEquals(resolveConfig({ model: "a", "no-mmap": true }, {}).weightsInMemory, true);
  assertEquals(resolveConfig({ model: "a" }, { "no-mmap": true }).weightsInMemory, true);
  assertEquals(resolveConfig({ model: "a", mmap: true }, {}).weightsInMemory, false);
  assertEquals(resolveConfig({ model: "a" }, { mmap: false }).weightsInMemory, true);
  assertEquals(resolveConfig({ model: "a", "no-mmap": false }, {}).weightsInMemory, false);
  assertEquals(resolveConfig({ model: "a", "no-mmap": true }, { mmap: true }).weightsInMemory, false);
  assertEquals(resolveConfig({ model: "a", mmap: true }, { "no-mmap": true }).weightsInMemory, true);
});

Deno.test("mmap and no-mmap from one source that contradict each other are an error naming both", () => {
  assertThrows(
    () => resolveConfig({ model: "a" }, { mmap: true, "no-mmap": true }),
    (e: Error) =>
      e instanceof ConfigError && e.message.startsWith("command line: mmap and no-mmap contradict"),
  );
  assertThrows(
    () => resolveConfig({ model: "a", mmap: false, "no-mmap": false }, {}, "server.yaml"),
    (e: Error) =>
      e instanceof ConfigError && e.message.startsWith("server.yaml: mmap and no-mmap contradict"),
  );
});

Deno.test("prefill-chunk-ms: a file value, a flag over it, 0 allowed, a negative one refused", () => {
  assertEquals(resolveConfig({ model: "a" }, {}).prefillChunkMs, undefined);
  assertEquals(resolveConfig({ model: "a", "prefill-chunk-ms": 100 }, {}).prefillChunkMs, 100);
  assertEquals(
    resolveConfig({ model: "a", "prefill-chunk-ms": 100 }, { "prefill-chunk-ms": 0 }).prefillChunkMs,
    0,
  );
  assertThrows(() => resolveConfig({ model: "a" }, { "prefill-chunk-ms": -5 }), /'prefill-chunk-ms'/);
});
