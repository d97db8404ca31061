import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { sseResponse } from "./sse.ts";

const errorBody = (err: unknown) => ({
  error: { message: String((err as Error).message), type: "server_error", param: null, code: null },
});

Deno.test("events are framed as data lines and end with [DONE]", async () => {
  async function* source() {
    yield { a: 1 };
    yield { b: "x\ny" };
  }
  const res = sseResponse(source(), { errorBody });
  assertEquals(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  assertEquals(await res.text(), 'data: {"a":1}\n\ndata: {"b":"x\\ny"}\n\ndata: [DONE]\n\n');
});

Deno.test("an error after the start is a final error event, without [DONE]", async () => {
  let closed = 0;
  async function* source() {
    yield { a: 1 };
    throw new Error("boom");
  }
  const res = sseResponse(source(), { errorBody, onClose: () => closed++ });
  const text = await res.text();
  assertEquals(
    text,
    'data: {"a":1}\n\ndata: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n',
  );
  assertEquals(closed, 1);
});

Deno.test("cancelling the body ends the source and reports it", async () => {
  let cancelled = 0;
  let finalized = false;
  async function* source() {
    try {
      for (let i = 0;; i++) yield { i };
    } finally {
      finalized = true;
    }
  }
  const res = sseResponse(source(), { errorBody, onCancel: () => cancelled++ });
  const reader = res.body!.getReader();
  await reader.read();
  await reader.cancel();
  assertEquals([cancelled, finalized], [1, true]);
});
