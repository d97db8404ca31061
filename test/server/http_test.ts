/**
 * The real server process over raw fetch: SSE framing byte for byte, auth headers, error statuses and
 * bodies, request ids, and cancellation when a client goes away.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ErrorBodySchema } from "../../src/api/openai.ts";
import { parseSse } from "./helpers.ts";
import { startServer } from "./process.ts";

Deno.test({
  name: "raw HTTP against the real server (qwen2-f32)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const server = await startServer({
      model: "qwen2-f32",
      args: ["--log-level", "INFO", "--max-request-bytes", "65536"],
    });
    const auth = { authorization: `Bearer ${server.token}` };
    const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
      fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const errorOf = async (res: Response) => ({
      status: res.status,
      ...ErrorBodySchema.parse(await res.json()).error,
    });

    try {
      await t.step("health is open and 200 once loaded", async () => {
        const res = await fetch(`${server.url}/health`);
        assertEquals([res.status, await res.json()], [200, { status: "ok" }]);
      });

      await t.step("auth headers: missing, malformed, wrong, lower-case scheme", async () => {
        const missing = await errorOf(await fetch(`${server.url}/v1/models`));
        assertEquals([missing.status, missing.type, missing.code], [
          401,
          "authentication_error",
          "invalid_api_key",
        ]);
        const malformed = await errorOf(
          await fetch(`${server.url}/v1/models`, { headers: { authorization: server.token! } }),
        );
        assertEquals(malformed.status, 401);
        const wrong = await errorOf(
          await post("/v1/completions", { prompt: "x" }, { authorization: "Bearer nope" }),
        );
        assertEquals(wrong.status, 401);
        const lower = await fetch(`${server.url}/v1/models`, {
          headers: { authorization: `bearer ${server.token}` },
        });
        assertEquals(lower.status, 200);
        await lower.body?.cancel();
      });

      await t.step("SSE framing: data events, [DONE] last, event-stream headers", async () => {
        const res = await post("/v1/chat/completions", {
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 6,
          temperature: 0,
          stream: true,
          stream_options: { include_usage: true },
        });
        assertEquals(res.status, 200);
        assertEquals(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
        assertEquals(res.headers.get("cache-control"), "no-cache");
        assert(res.headers.get("x-request-id"));
        const raw = await res.text();
        assert(raw.endsWith("data: [DONE]\n\n"), JSON.stringify(raw.slice(-40)));
        const blocks = raw.split("\n\n").slice(0, -1);
        for (const block of blocks) {
          assert(block.startsWith("data: "), JSON.stringify(block));
          assert(!block.includes("\n"), "one line per event");
        }
        const events = parseSse(raw);
        const chunks = events.slice(0, -1) as {
          id: string;
          choices: { delta: { role?: string } }[];
          usage?: unknown;
        }[];
        assertEquals(chunks[0].choices[0].delta.role, "assistant");
        assertEquals(chunks.at(-1)!.choices, []);
        assert(chunks.at(-1)!.usage);
        assertEquals(chunks[0].id, `chatcmpl-${res.headers.get("x-request-id")}`);
      });

      await t.step("a client-chosen x-request-id is used in the id and the log", async () => {
        const res = await post("/v1/completions", { prompt: "abc", max_tokens: 2 }, {
          ...auth,
          "x-request-id": "trace-42",
        });
        assertEquals((await res.json()).id, "cmpl-trace-42");
        await server.waitForLine(/\[trace-42\] Usage: /);
      });

      await t.step("bad input: statuses and error bodies", async () => {
        const malformed = await errorOf(await post("/v1/chat/completions", '{"messages": ['));
        assertEquals([malformed.status, malformed.code], [400, "invalid_json"]);
        const type = await errorOf(await post("/v1/chat/completions", { messages: "hi" }));
        assertEquals([type.status, type.param], [400, "messages"]);
        const range = await errorOf(await post("/v1/completions", { prompt: "x", top_p: 1.5 }));
        assertEquals([range.status, range.param], [400, "top_p"]);
        const long = await errorOf(await post("/v1/completions", { prompt: "word ".repeat(300) }));
        assertEquals([long.status, long.code], [400, "context_length_exceeded"]);
        assert(/\b256\b/.test(long.message), long.message);
        const big = await errorOf(await post("/v1/completions", { prompt: "x".repeat(70_000) }));
        assertEquals([big.status, big.code], [413, "request_too_large"]);
        const route = await errorOf(await post("/v1/embeddings", { input: "x" }));
        assertEquals([route.status, route.code], [404, "unknown_url"]);
        const unsupported = await errorOf(await post("/v1/completions", { prompt: "x", logprobs: 3 }));
        assertEquals([unsupported.status, unsupported.param, unsupported.code], [
          400,
          "logprobs",
          "unsupported_parameter",
        ]);
      });

      await t.step("a client that disconnects cancels its generation", async () => {
        const controller = new AbortController();
        const res = await fetch(`${server.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", ...auth, "x-request-id": "gone-1" },
          body: JSON.stringify({ prompt: "Once", max_tokens: 240, ignore_eos: true, stream: true }),
          signal: controller.signal,
        });
        const reader = res.body!.getReader();
        await reader.read();
        controller.abort();
        await reader.cancel().catch(() => {});
        await server.waitForLine(/\[gone-1\] client disconnected; generation cancelled/);
        // The server goes on serving.
        const after = await post("/v1/completions", { prompt: "abc", max_tokens: 2 });
        assertEquals(after.status, 200);
        await after.body?.cancel();
      });
      await t.step("a disconnect also cancels a non-streaming generation", async () => {
        const controller = new AbortController();
        const pending = fetch(`${server.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", ...auth, "x-request-id": "gone-2" },
          body: JSON.stringify({ prompt: "Once", max_tokens: 240, ignore_eos: true }),
          signal: controller.signal,
        }).catch((err) => err);
        await server.waitForLine(/\[gone-2\] Input token IDs/);
        controller.abort();
        assert((await pending) instanceof Error);
        await server.waitForLine(/\[gone-2\] client disconnected; generation cancelled/);
        assert(!server.stderr.some((l) => /\[gone-2\] Usage:/.test(l)), "the generation ran to its end");
      });
    } finally {
      assertEquals(await server.stop(), 0, server.stderr.join("\n"));
    }
  },
});
