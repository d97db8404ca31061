/**
 * runServer in-process, while the model is still loading: the socket is bound first so that load
 * balancers see readiness, and a load that fails stops the server with exit code 1. (Ready, serving
 * and the stop signals are covered with the real process in test/server/lifecycle_test.ts.)
 */

import { deepStrictEqual as assertEquals, ok as assert, rejects as assertRejects } from "node:assert/strict";
import { ErrorBodySchema } from "../api/openai.ts";
import { appConfig } from "./context.ts";
import { Logger } from "./logger.ts";
import { type LoadedModel, runServer, urlHost } from "./runtime.ts";

Deno.test({
  name: "while the model loads: /health 503, the API 503 behind auth; a failed load exits 1",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    let failLoad!: (err: Error) => void;
    const loading = new Promise<LoadedModel>((_, reject) => (failLoad = reject));
    let listening!: (base: string) => void;
    const listened = new Promise<string>((resolve) => (listening = resolve));
    const printed: string[] = [];
    const lines: string[] = [];
    const { createdAt: _, ...app } = appConfig({ authToken: "t0k" });
    const exit = runServer({
      host: "127.0.0.1",
      port: 0,
      app,
      publishToken: false,
      shutdownTimeout: 1,
      logger: new Logger({ sink: (line) => lines.push(line) }),
      load: () => loading,
      print: (line) => {
        printed.push(line);
        const m = /listening on (http:\/\/\S+)/.exec(line);
        if (m) listening(m[1]);
      },
    });
    const base = await listened;

    const health = await fetch(`${base}/health`);
    assertEquals([health.status, await health.json()], [503, { status: "loading" }]);
    const api = await fetch(`${base}/v1/models`, { headers: { authorization: "Bearer t0k" } });
    assertEquals(api.status, 503);
    assertEquals(ErrorBodySchema.parse(await api.json()).error.code, "model_loading");
    const chat = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer t0k", "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
    });
    assertEquals(chat.status, 503);
    await chat.body?.cancel();
    // Auth comes first: probing the API without the token learns nothing.
    const anonymous = await fetch(`${base}/v1/models`);
    assertEquals(anonymous.status, 401);
    await anonymous.body?.cancel();
    // An operator's token is not printed (stderr ends up in logs); a generated one is.
    assert(printed.some((l) => l.startsWith("hearth auth token: the one given")), printed.join("\n"));
    assert(!printed.some((l) => l.includes("t0k")), printed.join("\n"));

    failLoad(new Error("no such model"));
    assertEquals(await exit, 1);
    assert(lines.some((l) => l.includes("could not load the model: no such model")), lines.join("\n"));
    // The socket is closed: nothing answers any more.
    await assertRejects(fetch(`${base}/health`));
  },
});

Deno.test("urlHost: wildcard binds are reached through loopback, IPv6 in brackets", () => {
  assertEquals(urlHost("0.0.0.0"), "127.0.0.1");
  assertEquals(urlHost("::"), "[::1]");
  assertEquals(urlHost("::1"), "[::1]");
  assertEquals(urlHost("localhost"), "localhost");
});
