import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { FlagError, type FlagSpec, formatHelp, parseFlags } from "./flags.ts";

const SPECS: Record<string, FlagSpec> = {
  model: { kind: "string", short: "m", help: "model" },
  port: { kind: "int", short: "p", help: "port" },
  timeout: { kind: "number", help: "seconds" },
  "ignore-eos": { kind: "bool", help: "flag" },
  "stop-sequences": { kind: "list", short: "s", help: "list" },
  kwargs: { kind: "json", help: "json" },
  stop: { kind: "append", help: "append" },
};

Deno.test("values in all spellings", () => {
  const r = parseFlags(["cfg.yaml", "-m", "/m", "--port=9", "--timeout", "2.5", "--ignore-eos"], SPECS);
  assertEquals(r.positionals, ["cfg.yaml"]);
  assertEquals(r.values, { model: "/m", port: 9, timeout: 2.5, "ignore-eos": true });
});

Deno.test("lists take values up to the next option, and repeat", () => {
  const r = parseFlags(
    ["--stop-sequences", "a", "b c", "--port", "1", "-s", "d", "--stop-sequences=-x"],
    SPECS,
  );
  assertEquals(r.values["stop-sequences"], ["a", "b c", "d", "-x"]);
});

Deno.test("append flags take one value per occurrence, even one starting with a dash", () => {
  const r = parseFlags(["--stop", "a", "cfg.yaml", "--stop", "-b", "--stop=c"], SPECS);
  assertEquals(r.values.stop, ["a", "-b", "c"]);
  assertEquals(r.positionals, ["cfg.yaml"]);
  assertThrows(() => parseFlags(["--stop"], SPECS), /--stop needs a value/);
  assertEquals(formatHelp("usage", SPECS).includes("(repeatable)"), true);
});

Deno.test("booleans can be turned off explicitly", () => {
  assertEquals(parseFlags(["--ignore-eos=false"], SPECS).values["ignore-eos"], false);
});

Deno.test("json flags take JSON or YAML", () => {
  assertEquals(parseFlags(["--kwargs", '{"enable_thinking": false}'], SPECS).values.kwargs, {
    enable_thinking: false,
  });
});

Deno.test("bad flags name themselves", () => {
  assertThrows(
    () => parseFlags(["--nope"], SPECS),
    (e: Error) => e instanceof FlagError && e.message.includes("--nope"),
  );
  assertThrows(() => parseFlags(["--port", "x"], SPECS), /--port expects an integer/);
  assertThrows(() => parseFlags(["--model"], SPECS), /--model needs a value/);
});

Deno.test("help is recognised and formatted", () => {
  assertEquals(parseFlags(["--help"], SPECS).help, true);
  const text = formatHelp("usage", SPECS);
  assertEquals(text.includes("-m, --model VALUE"), true);
});
