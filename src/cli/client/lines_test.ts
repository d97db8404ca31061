import { assertEquals } from "../../../test/assert.ts";
import { readLines } from "./lines.ts";

Deno.test("lines come one at a time, CRLF and an unterminated last line included", async () => {
  const encoder = new TextEncoder();
  const parts = ["hel", "lo\nwor", "ld\r\n\nlast"];
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) c.enqueue(encoder.encode(p));
      c.close();
    },
  });
  assertEquals(await Array.fromAsync(readLines(stream)), ["hello", "world", "", "last"]);
});
