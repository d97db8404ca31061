import { assertEquals } from "../../../test/assert.ts";
import { memoryOutput } from "./output.ts";

Deno.test("memory output keeps stdout text and stderr lines apart", () => {
  const out = memoryOutput();
  out.out("a");
  out.out("b\n");
  out.err("diagnostic");
  assertEquals(out.stdout, "ab\n");
  assertEquals(out.stderr, ["diagnostic"]);
});
