import { assertEquals } from "../../../test/assert.ts";
import { readSseData } from "./sse.ts";

/** A byte stream delivering `parts` one read at a time. */
function stream(parts: string[]): ReadableStream<Uint8Array> & { cancelled: boolean } {
  const encoder = new TextEncoder();
  let i = 0;
  const s = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < parts.length) controller.enqueue(encoder.encode(parts[i++]));
      else controller.close();
    },
    cancel() {
      s.cancelled = true;
    },
  }) as ReadableStream<Uint8Array> & { cancelled: boolean };
  s.cancelled = false;
  return s;
}

async function collect(parts: string[]): Promise<string[]> {
  return await Array.fromAsync(readSseData(stream(parts)));
}

Deno.test("events split anywhere, even inside a UTF-8 character", async () => {
  const text = 'data: {"a":"é"}\n\ndata: [DONE]\n\n';
  const bytes = new TextEncoder().encode(text);
  const byteByByte = new ReadableStream<Uint8Array>({
    start(c) {
      for (const b of bytes) c.enqueue(new Uint8Array([b]));
      c.close();
    },
  });
  assertEquals(await Array.fromAsync(readSseData(byteByByte)), ['{"a":"é"}', "[DONE]"]);
  assertEquals(await collect(["da", "ta: 1\n", "\nda", "ta: 2\n\n"]), ["1", "2"]);
});

Deno.test("CRLF and CR line ends, multi-line data, comments and other fields", async () => {
  assertEquals(await collect(["data: a\r\n\r\ndata: b\r\r"]), ["a", "b"]);
  assertEquals(await collect([": keep-alive\n\nevent: x\nid: 3\ndata: one\ndata:two\n\n"]), ["one\ntwo"]);
  assertEquals(await collect(["data\n\n"]), [""]);
});

Deno.test("a last event without its blank line still counts", async () => {
  assertEquals(await collect(["data: a\n\ndata: b"]), ["a", "b"]);
  assertEquals(await collect(["data: a\n"]), ["a"]);
});

Deno.test("stopping early cancels the body", async () => {
  const s = stream(["data: 1\n\n", "data: 2\n\n", "data: 3\n\n"]);
  for await (const data of readSseData(s)) {
    assertEquals(data, "1");
    break;
  }
  assertEquals(s.cancelled, true);
});
