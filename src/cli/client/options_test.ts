import { assertEquals, assertThrows } from "../../../test/assert.ts";
import { FlagError } from "../flags.ts";
import { DEFAULT_URL, resolveOptions, selectMode } from "./options.ts";

Deno.test("defaults are the seed client's", () => {
  const o = resolveOptions({}, {});
  assertEquals(o.url, "http://localhost:8137/v1");
  assertEquals(DEFAULT_URL, o.url);
  assertEquals([o.maxTokens, o.temperature, o.echo, o.showUsage], [512, 0.7, true, false]);
  assertEquals(o.stop, []);
  assertEquals(o.extra, {});
  assertEquals(o.topP, undefined);
});

Deno.test("flags override the config file; extras take their body names", () => {
  const o = resolveOptions(
    { "max-tokens": 64, temperature: 0.2, stop: ["a"], "top-k": 40, seed: 1 },
    { "max-tokens": 8, stop: ["b", "c"], "repetition-penalty": 1.2, "ignore-eos": true, "min-length": 3 },
  );
  assertEquals([o.maxTokens, o.temperature, o.stop], [8, 0.2, ["b", "c"]]);
  assertEquals(o.extra, { repetition_penalty: 1.2, top_k: 40, min_length: 3, seed: 1, ignore_eos: true });
});

Deno.test("echo: --no-echo and --echo, flags over the file", () => {
  assertEquals(resolveOptions({}, { "no-echo": true }).echo, false);
  assertEquals(resolveOptions({ "no-echo": true }, {}).echo, false);
  assertEquals(resolveOptions({ "no-echo": true }, { echo: true }).echo, true);
  assertEquals(resolveOptions({ echo: false }, {}).echo, false);
  assertThrows(() => resolveOptions({}, { echo: true, "no-echo": true }), FlagError, "contradict");
});

Deno.test("bad combinations and values name the flag", () => {
  assertThrows(
    () => resolveOptions({}, { message: "a", completion: "b" }),
    FlagError,
    "--message, --completion",
  );
  assertThrows(() => resolveOptions({}, { health: true, "list-models": true }), FlagError, "only one of");
  assertThrows(() => resolveOptions({}, { url: "localhost:8137" }), FlagError, "--url");
  assertThrows(() => resolveOptions({}, { url: "not a url" }), FlagError, "--url");
  assertThrows(() => resolveOptions({}, { "max-tokens": 0 }), FlagError, "--max-tokens");
  assertThrows(
    () => resolveOptions({}, { "auth-token": "a", "auth-token-file": "f" }),
    FlagError,
    "not both",
  );
});

Deno.test("the mode: explicit ones first, then terminal (chat) or piped stdin", () => {
  assertEquals(selectMode(resolveOptions({}, { health: true }), false), "health");
  assertEquals(selectMode(resolveOptions({}, { "list-models": true }), true), "list-models");
  assertEquals(selectMode(resolveOptions({}, { message: "hi" }), false), "message");
  assertEquals(selectMode(resolveOptions({}, { completion: "x" }), true), "completion");
  assertEquals(selectMode(resolveOptions({}, {}), true), "chat");
  assertEquals(selectMode(resolveOptions({}, {}), false), "stdin");
});
