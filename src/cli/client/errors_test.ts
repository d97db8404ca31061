import { assertEquals, assertStringIncludes } from "../../../test/assert.ts";
import { errorMessageOf, fetchFailureReason, HttpError, unreachable } from "./errors.ts";

Deno.test("fetch failures are boiled down to their last clause", () => {
  const refused = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (http://127.0.0.1:47/v1/models): client error (Connect): tcp connect error: " +
        "Connection refused (os error 111)",
    ),
  });
  assertEquals(fetchFailureReason(refused), "connection refused");
  assertEquals(
    unreachable("http://127.0.0.1:47/v1/models", refused).message,
    "cannot reach http://127.0.0.1:47/v1/models: connection refused (is the server running? start one with `deno task serve`)",
  );
  assertEquals(
    fetchFailureReason(new TypeError("Fetch failed: Requests to port 1 are blocked")),
    "requests to port 1 are blocked",
  );
  const dns = new TypeError("fetch failed", {
    cause: new Error(
      "client error (Connect): dns error: failed to lookup address information: Name or service not known",
    ),
  });
  assertEquals(
    unreachable("http://nohost/v1", dns).message,
    "cannot reach http://nohost/v1: name or service not known",
  );
});

Deno.test("error bodies: OpenAI's shape, else the first line of the text, always one line", () => {
  assertEquals(errorMessageOf('{"error": {"message": "bad\\nthing", "type": "x"}}'), "bad thing");
  assertEquals(errorMessageOf('{"error": "plain"}'), "plain");
  assertEquals(errorMessageOf('{"detail": 1, "message": "m"}'), "m");
  assertEquals(errorMessageOf("<html>\nBad Gateway</html>"), "<html>");
  assertEquals(errorMessageOf(""), "(empty response)");
  assertEquals(errorMessageOf("x".repeat(300)).length, 201);
});

Deno.test("HTTP errors name status, URL, the server's message and a hint", () => {
  const e = new HttpError(401, "Incorrect bearer token provided", "http://h/v1/models", "sent --auth-token");
  assertEquals(
    e.message,
    "HTTP 401 from http://h/v1/models: Incorrect bearer token provided (sent --auth-token)",
  );
  assertStringIncludes(new HttpError(500, "boom", "u").message, "HTTP 500 from u: boom");
});
