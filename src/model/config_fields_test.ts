import assert from "node:assert/strict";
import { ConfigReader } from "./config_fields.ts";
import { ModelConfigError } from "./errors.ts";

const r = (json: Record<string, unknown>) => new ConfigReader("/m/config.json", json);

function fails(fn: () => unknown, message: string) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelConfigError, `expected ModelConfigError, got ${e}`);
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("parse rejects non-JSON and non-objects, naming the file", () => {
  assert.throws(
    () => ConfigReader.parse("/m/config.json", "{"),
    /^ModelConfigError: \/m\/config.json is not valid JSON/,
  );
  fails(() => ConfigReader.parse("/m/config.json", "[]"), "/m/config.json: expected a JSON object, got []");
  assert.equal(ConfigReader.parse("/m/config.json", '{"a": 1}').positiveInt("a"), 1);
});

Deno.test("positiveInt: messages name the file, key and bad value", () => {
  fails(
    () => r({ hidden_size: "abc" }).positiveInt("hidden_size"),
    '/m/config.json: hidden_size must be a positive integer, got "abc"',
  );
  fails(
    () => r({}).positiveInt("hidden_size"),
    "/m/config.json: hidden_size is missing; it must be a positive integer",
  );
  fails(() => r({ n: 0 }).positiveInt("n"), "/m/config.json: n must be a positive integer, got 0");
  fails(() => r({ n: 1.5 }).positiveInt("n"), "/m/config.json: n must be a positive integer, got 1.5");
  fails(() => r({ n: null }).positiveInt("n"), "/m/config.json: n must be a positive integer, got null");
  assert.equal(r({ n: null }).positiveInt("n", 7), 7);
  assert.equal(r({}).positiveInt("n", 7), 7);
  assert.equal(r({ n: 3 }).positiveInt("n", 7), 3);
});

Deno.test("numbers, booleans and strings", () => {
  assert.equal(r({ e: 1e-5 }).positiveNumber("e"), 1e-5);
  fails(() => r({ e: -1 }).positiveNumber("e"), "/m/config.json: e must be a positive number, got -1");
  assert.equal(r({ x: -2.5 }).number("x"), -2.5);
  fails(() => r({ x: "1" }).number("x"), '/m/config.json: x must be a number, got "1"');
  assert.equal(r({}).bool("t", false), false);
  fails(() => r({ t: "true" }).bool("t", false), '/m/config.json: t must be true or false, got "true"');
  fails(() => r({ s: 3 }).string("s"), "/m/config.json: s must be a string, got 3");
});

Deno.test("token ids: one, a list (deduplicated), or none", () => {
  assert.deepEqual(r({ eos: 2 }).tokenIds("eos", null), [2]);
  assert.deepEqual(r({ eos: [2, 3, 2] }).tokenIds("eos", null), [2, 3]);
  assert.deepEqual(r({ eos: null }).tokenIds("eos", null), []);
  assert.deepEqual(r({}).tokenIds("eos", 2), [2]);
  fails(
    () => r({ eos: [1, "x"] }).tokenIds("eos", null),
    '/m/config.json: eos must be a token id or a list of token ids, got [1,"x"]',
  );
  assert.equal(r({ bos: null }).tokenId("bos", 1), null);
  assert.equal(r({}).tokenId("bos", 1), 1);
  fails(
    () => r({ bos: -1 }).tokenId("bos", null),
    "/m/config.json: bos must be a non-negative integer or null, got -1",
  );
});

Deno.test("nested objects prefix their key names in messages", () => {
  const sub = r({ rope_scaling: { factor: "x" } }).object("rope_scaling")!;
  fails(
    () => sub.positiveNumber("factor"),
    '/m/config.json: rope_scaling.factor must be a positive number, got "x"',
  );
  assert.equal(r({ rope_scaling: null }).object("rope_scaling"), null);
  fails(() => r({ o: 1 }).object("o"), "/m/config.json: o must be an object, got 1");
});

Deno.test("long bad values are shortened in messages", () => {
  assert.throws(() => r({ s: "x".repeat(500) }).positiveInt("s"), (e: Error) => e.message.length < 150);
});
