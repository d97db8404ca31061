import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { bearerToken, constantTimeEqual, generateToken } from "./auth.ts";

Deno.test("generated tokens are 64 hex characters and differ", () => {
  const a = generateToken();
  assert(/^[0-9a-f]{64}$/.test(a));
  assert(a !== generateToken());
});

Deno.test("constantTimeEqual compares exactly", () => {
  assertEquals(constantTimeEqual("abc", "abc"), true);
  assertEquals(constantTimeEqual("abc", "abd"), false);
  assertEquals(constantTimeEqual("abc", "abcd"), false);
  assertEquals(constantTimeEqual("", ""), true);
});

Deno.test("bearerToken parses the Authorization header", () => {
  assertEquals(bearerToken("Bearer xyz"), "xyz");
  assertEquals(bearerToken("bearer  xyz "), "xyz");
  assertEquals(bearerToken("Basic xyz"), null);
  assertEquals(bearerToken("Bearer"), null);
  assertEquals(bearerToken(undefined), null);
});
