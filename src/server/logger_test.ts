import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { Logger, parseLogLevel } from "./logger.ts";

function capture(options: ConstructorParameters<typeof Logger>[0] = {}) {
  const lines: string[] = [];
  const logger = new Logger({ ...options, sink: (line) => lines.push(line) });
  return { logger, lines };
}

Deno.test("logger drops records below its level", () => {
  const { logger, lines } = capture({ level: "WARNING" });
  logger.debug("d");
  logger.info("i");
  logger.warn("w");
  logger.error("e");
  assertEquals(lines.length, 2);
  assert(lines[0].includes("WARNING") && lines[0].endsWith("w"));
});

Deno.test("child loggers put the request id on every text line", () => {
  const { logger, lines } = capture({ level: "DEBUG" });
  const req = logger.child({ request_id: "chatcmpl-1" });
  req.info("hello", { n: 3, s: "a b" });
  assertMatch(lines[0], /^\S+ INFO {4}\[chatcmpl-1\] hello n=3 s="a b"$/);
});

Deno.test("json format writes one object per line", () => {
  const { logger, lines } = capture({ format: "json" });
  logger.child({ request_id: "r1" }).error("boom", { err: new Error("why") });
  const record = JSON.parse(lines[0]);
  assertEquals(record.level, "ERROR");
  assertEquals(record.msg, "boom");
  assertEquals(record.request_id, "r1");
  assertEquals(record.err, "why");
});

Deno.test("parseLogLevel is case-insensitive and knows WARN", () => {
  assertEquals(parseLogLevel("debug"), "DEBUG");
  assertEquals(parseLogLevel("warn"), "WARNING");
  assertEquals(parseLogLevel("loud"), undefined);
});
