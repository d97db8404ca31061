import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { JsonTemplate, sseResponse } from "./sse.ts";

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

Deno.test("a JSON template gives JSON.stringify's bytes for any text", () => {
  const shape = (text: string) => ({
    id: "x",
    choices: [{ index: 0, delta: { content: text }, n: null }],
    z: 1,
  });
  const template = new JsonTemplate(shape);
  const texts = [
    "",
    "plain",
    'quote " and \\ backslash',
    "new\nline\ttab\r",
    "\u0000text\u0000",
    "日本🙂",
    "\ud800 lone",
    "\u2028",
  ];
  for (const text of texts) assertEquals(template.fill(text), JSON.stringify(shape(text)));
});

Deno.test("a JSON template needs its text exactly once", () => {
  assertThrows(() => new JsonTemplate(() => ({ a: "fixed" })), /exactly once/);
  assertThrows(() => new JsonTemplate((t) => ({ a: t, b: t })), /exactly once/);
});
