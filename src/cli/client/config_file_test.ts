import { assertEquals, assertThrows } from "../../../test/assert.ts";
import { FlagError } from "../flags.ts";
import { parseClientConfig } from "./config_file.ts";
import { CLIENT_FLAGS } from "./options.ts";

const parse = (text: string) => parseClientConfig(text, CLIENT_FLAGS, "client.yaml");

Deno.test("keys are the flags' kebab-case names, typed", () => {
  const values = parse(
    "url: http://h:1/v1\nmax-tokens: 64\ntemperature: 0\nstop: END\nshow-usage: true\n" +
      "repetition-penalty: 1.1\nmodel: 7\nsystem: ~\n",
  );
  assertEquals(values, {
    url: "http://h:1/v1",
    "max-tokens": 64,
    temperature: 0,
    stop: ["END"],
    "show-usage": true,
    "repetition-penalty": 1.1,
    model: "7",
  });
  assertEquals(parse("stop: [a, b]").stop, ["a", "b"]);
  assertEquals(parse(""), {});
});

Deno.test("unknown keys, wrong types and bad YAML are errors naming them", () => {
  assertThrows(() => parse("max_tokens: 5"), FlagError, "unknown key 'max_tokens'");
  assertThrows(() => parse("config: other.yaml"), FlagError, "unknown key 'config'");
  assertThrows(() => parse("max-tokens: 1.5"), FlagError, "'max-tokens' expects an integer");
  assertThrows(() => parse("show-usage: maybe"), FlagError, "'show-usage' expects true or false");
  assertThrows(() => parse("stop: [1, 2]"), FlagError, "'stop' expects a string or a list");
  assertThrows(() => parse("- a\n- b"), FlagError, "expected a mapping");
  assertThrows(() => parse("a: [b"), FlagError, "not valid YAML");
});
