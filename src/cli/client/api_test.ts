import { assert, assertEquals, assertRejects } from "../../../test/assert.ts";
import {
  brokenSseResponse,
  chatChunks,
  completionChunks,
  errorResponse,
  fakeFetch,
  jsonResponse,
  sseResponse,
} from "../../../test/client/fake_fetch.ts";
import { ApiClient } from "./api.ts";
import { ClientError, HttpError } from "./errors.ts";

const BASE = "http://127.0.0.1:8137/v1";

Deno.test("health lives beside the API base and needs no success", async () => {
  const fake = fakeFetch(() => jsonResponse({ status: "loading" }, 503));
  const api = new ApiClient({ baseUrl: BASE + "/", token: null, fetch: fake.fetch });
  assertEquals(api.healthUrl(), "http://127.0.0.1:8137/health");
  assertEquals(await api.health(), { ok: false, status: 503, body: '{"status":"loading"}' });
  assertEquals(fake.requests[0].headers.get("authorization"), null);
});

Deno.test("models are listed with the bearer token", async () => {
  const fake = fakeFetch(() => jsonResponse({ object: "list", data: [{ id: "a" }, { id: "b" }] }));
  const api = new ApiClient({ baseUrl: BASE, token: "t0k", fetch: fake.fetch });
  assertEquals(await api.listModels(), ["a", "b"]);
  assertEquals(fake.requests[0].url, BASE + "/models");
  assertEquals(fake.requests[0].headers.get("authorization"), "Bearer t0k");
});

Deno.test("chat streams deltas: text, finish reason, usage, model", async () => {
  const fake = fakeFetch(() => sseResponse(chatChunks(["Hel", "lo"])));
  const api = new ApiClient({ baseUrl: BASE, token: null, fetch: fake.fetch });
  const deltas = await Array.fromAsync(api.stream("chat", { messages: [] }));
  assertEquals(deltas.map((d) => d.text ?? "").join(""), "Hello");
  assertEquals(deltas.find((d) => d.finishReason)?.finishReason, "length");
  assertEquals(deltas.at(-1)?.usage?.total_tokens, 7);
  assertEquals(deltas[0].model, "tiny");
  assertEquals(fake.requests[0].url, BASE + "/chat/completions");
  assertEquals(fake.requests[0].body, { messages: [], stream: true });
});

Deno.test("completions stream text; a whole JSON answer is read too", async () => {
  const streaming = fakeFetch(() => sseResponse(completionChunks(["Once", " more"])));
  const api = new ApiClient({ baseUrl: BASE, token: null, fetch: streaming.fetch });
  const deltas = await Array.fromAsync(api.stream("completion", { prompt: "x" }));
  assertEquals(deltas.map((d) => d.text ?? "").join(""), "Once more");
  assertEquals(streaming.requests[0].url, BASE + "/completions");

  const whole = fakeFetch(() =>
    jsonResponse({ choices: [{ message: { content: "all at once" }, finish_reason: "stop" }] })
  );
  const api2 = new ApiClient({ baseUrl: BASE, token: null, fetch: whole.fetch });
  assertEquals(await Array.fromAsync(api2.stream("chat", {})), [{
    text: "all at once",
    finishReason: "stop",
  }]);
});

Deno.test("HTTP errors carry the server's message; 401 says where the token came from", async () => {
  const fake = fakeFetch(() => errorResponse(401, "Incorrect bearer token provided"));
  const withToken = new ApiClient({
    baseUrl: BASE,
    token: "x",
    tokenSource: "--auth-token",
    fetch: fake.fetch,
  });
  const e = await assertRejects(() => withToken.listModels(), HttpError) as HttpError;
  assertEquals(e.status, 401);
  assertEquals(
    e.message,
    `HTTP 401 from ${BASE}/models: Incorrect bearer token provided (sent the token from --auth-token)`,
  );
  const without = new ApiClient({
    baseUrl: BASE,
    token: null,
    tokenSource: "no token given and no token file at /x/8137.token",
    fetch: fake.fetch,
  });
  const e2 = await assertRejects(() => without.listModels(), HttpError);
  assert(e2.message.includes("no token file at /x/8137.token; pass --auth-token or --auth-token-file"));

  const bad = fakeFetch(() => errorResponse(400, "'num_beams' is not supported by this server yet"));
  const api = new ApiClient({ baseUrl: BASE, token: null, fetch: bad.fetch });
  await assertRejects(
    () => Array.fromAsync(api.stream("completion", { num_beams: 2 })),
    HttpError,
    "HTTP 400 from http://127.0.0.1:8137/v1/completions: 'num_beams' is not supported by this server yet",
  );
});

Deno.test("an error event in the stream and an unreachable server are client errors", async () => {
  const fake = fakeFetch(() =>
    sseResponse([{ choices: [{ text: "a" }] }, { error: { message: "The server is shutting down." } }], false)
  );
  const api = new ApiClient({ baseUrl: BASE, token: null, fetch: fake.fetch });
  const seen: string[] = [];
  await assertRejects(
    async () => {
      for await (const d of api.stream("completion", {})) seen.push(d.text ?? "");
    },
    ClientError,
    "the server ended the stream with an error: The server is shutting down.",
  );
  assertEquals(seen, ["a"]);

  const down = fakeFetch(() => {
    throw new TypeError("fetch failed", {
      cause: new Error("tcp connect error: Connection refused (os error 111)"),
    });
  });
  const api2 = new ApiClient({ baseUrl: BASE, token: null, fetch: down.fetch });
  await assertRejects(
    () => api2.health(),
    ClientError,
    "cannot reach http://127.0.0.1:8137/health: connection refused",
  );
});

Deno.test("a 404 under a base without /v1 hints at the URL", async () => {
  const fake = fakeFetch(() => new Response("404 page not found", { status: 404 }));
  const api = new ApiClient({ baseUrl: "http://h:8137", token: null, fetch: fake.fetch });
  await assertRejects(
    () => api.listModels(),
    HttpError,
    "HTTP 404 from http://h:8137/models: 404 page not found (does --url end with /v1?)",
  );
});

Deno.test("a connection that breaks mid-stream is a client error, after the text it brought", async () => {
  const fake = fakeFetch(() => brokenSseResponse(completionChunks(["Once"]).slice(0, 1)));
  const api = new ApiClient({ baseUrl: BASE, token: null, fetch: fake.fetch });
  const seen: string[] = [];
  await assertRejects(
    async () => {
      for await (const d of api.stream("completion", {})) seen.push(d.text ?? "");
    },
    ClientError,
    `${BASE}/completions: the connection broke before the answer ended: error reading a body from connection`,
  );
  assertEquals(seen, ["Once"]);

  // An abort of the caller's signal is passed on as it is (interactive chat tells it apart).
  const controller = new AbortController();
  const aborting = fakeFetch(() => {
    controller.abort();
    return brokenSseResponse([]);
  });
  const api2 = new ApiClient({ baseUrl: BASE, token: null, fetch: aborting.fetch });
  const err = await assertRejects(() => Array.fromAsync(api2.stream("chat", {}, controller.signal)));
  assertEquals(err instanceof ClientError, false);
});
