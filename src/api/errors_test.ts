import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { z } from "zod";
import { ApiError, fromZodError, paramPath } from "./errors.ts";

Deno.test("paramPath formats nested paths like OpenAI's param", () => {
  assertEquals(paramPath(["messages", 0, "content", 2, "type"]), "messages[0].content[2].type");
  assertEquals(paramPath([]), "");
});

Deno.test("fromZodError names the field and tells missing from invalid", () => {
  const schema = z.object({ a: z.number().max(1), b: z.string() });
  const invalid = fromZodError(schema.safeParse({ a: 5, b: "x" }).error!, { a: 5, b: "x" });
  assertEquals([invalid.status, invalid.param, invalid.code], [400, "a", "invalid_value"]);
  const missing = fromZodError(schema.safeParse({ a: 0 }).error!, { a: 0 });
  assertEquals([missing.param, missing.code, missing.message], [
    "b",
    "missing_required_parameter",
    "Missing required parameter: 'b'",
  ]);
  // A union's own message would read "Invalid value"; with the input, an absent field is missing.
  const union = z.object({ p: z.union([z.string(), z.array(z.int())], { error: "a string or ids" }) });
  assertEquals(fromZodError(union.safeParse({}).error!, {}).message, "Missing required parameter: 'p'");
  assertEquals(
    fromZodError(union.safeParse({ p: 5 }).error!, { p: 5 }).message,
    "Invalid value for 'p': a string or ids",
  );
});

Deno.test("the body has the four OpenAI fields", () => {
  assertEquals(ApiError.notImplemented("n").toBody(), {
    error: {
      message: "'n' is not supported by this server yet",
      type: "invalid_request_error",
      param: "n",
      code: "unsupported_parameter",
    },
  });
  assertEquals(new ApiError(500, "x").type, "server_error");
});
