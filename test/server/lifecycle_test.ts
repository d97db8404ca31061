/**
 * The server process's life: the token file (0600 in 0700, removed on SIGTERM/SIGINT), graceful
 * shutdown with a request in flight, the auth modes, the YAML config with flag overrides, and
 * startup errors that name what is wrong.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { parseSse } from "./helpers.ts";
import { runServeOnce, startServer } from "./process.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test({
  ...opts,
  name: "token file: 0600 in a 0700 directory, removed on SIGTERM after in-flight requests finish",
  fn: async () => {
    const server = await startServer();
    const stat = await Deno.stat(server.tokenFile);
    assertEquals(stat.mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(join(server.configHome, "hearth", "inference"))).mode! & 0o777, 0o700);
    assertEquals((await Deno.readTextFile(server.tokenFile)).trim(), server.token);
    assert(/^[0-9a-f]{64}$/.test(server.token!));
    assert(server.stderr.some((l) => l.startsWith(`curl -H "Authorization: Bearer ${server.token}"`)));

    const res = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${server.token}` },
      body: JSON.stringify({ prompt: "Once", max_tokens: 200, ignore_eos: true, stream: true }),
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    server.child.kill("SIGTERM");
    await server.waitForLine(/received SIGTERM/);
    let text = new TextDecoder().decode(first.value);
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      text += new TextDecoder().decode(r.value);
    }
    const events = parseSse(text);
    assertEquals(events.at(-1), "[DONE]");
    const finish = (events.at(-2) as { choices: { finish_reason: string }[] }).choices[0].finish_reason;
    assertEquals(finish, "length");
    const tokenFile = server.tokenFile;
    // No second signal: the first one already has it shutting down (a second would mean "now").
    assertEquals(await server.stop(null), 0);
    assertEquals(await exists(tokenFile), false);
  },
});

Deno.test({
  ...opts,
  name: "SIGINT also stops cleanly and removes the token file",
  fn: async () => {
    const server = await startServer();
    assert(await exists(server.tokenFile));
    const tokenFile = server.tokenFile;
    assertEquals(await server.stop("SIGINT"), 0);
    assertEquals(await exists(tokenFile), false);
  },
});

Deno.test({
  ...opts,
  name: "--no-auth: loud banner, no token file, no header needed",
  fn: async () => {
    const server = await startServer({ args: ["--no-auth"] });
    try {
      assert(server.stderr.some((l) => l.includes("--no-auth")));
      assertEquals(await exists(server.tokenFile), false);
      const res = await fetch(`${server.url}/v1/models`);
      assertEquals(res.status, 200);
      await res.body?.cancel();
    } finally {
      assertEquals(await server.stop(), 0);
    }
  },
});

Deno.test({
  ...opts,
  name: "--stats-interval: an INFO line of the engine's throughput while requests come, none while idle",
  fn: async () => {
    const server = await startServer({ args: ["--no-auth", "--stats-interval", "0.2"] });
    try {
      await new Promise((r) => setTimeout(r, 600)); // idle: several intervals pass without a line
      assertEquals(server.stderr.filter((l) => l.includes("engine: ")).length, 0);
      const res = await fetch(`${server.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "hello there", max_tokens: 8, ignore_eos: true }),
      });
      assertEquals(res.status, 200);
      await res.body?.cancel();
      const line = await server.waitForLine(/engine: prompt [\d.]+ tok\/s, generation [\d.]+ tok\/s/, 5000);
      assert(line.includes("INFO") && line.includes("prefix cache hit rate"), line);
    } finally {
      assertEquals(await server.stop(), 0);
    }
  },
});

Deno.test({
  ...opts,
  name: "--auth-token-file and a YAML config with flag overrides",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "hearth-test-cfg-" });
    try {
      const tokenPath = join(dir, "token");
      await Deno.writeTextFile(tokenPath, "operator-token-123\n", { mode: 0o600 });
      const configPath = join(dir, "server.yaml");
      await Deno.writeTextFile(
        configPath,
        [
          "served-model-name: from-yaml",
          "host: 127.0.0.1",
          "log-level: warning",
          `auth-token-file: ${tokenPath}`,
          "stop-sequences: []",
          "chat-template-kwargs: { enable_thinking: false }",
        ].join("\n"),
      );
      const server = await startServer({
        args: [configPath, "--served-model-name", "from-flag"],
        token: "operator-token-123",
      });
      try {
        // The operator's token works, and is never printed.
        assert(!server.stderr.some((l) => l.includes("operator-token-123")), server.stderr.join("\n"));
        // Operator-supplied tokens are not published to the shared file.
        assertEquals(await exists(server.tokenFile), false);
        const res = await fetch(`${server.url}/v1/models`, {
          headers: { authorization: "Bearer operator-token-123" },
        });
        assertEquals((await res.json()).data[0].id, "from-flag");
      } finally {
        assertEquals(await server.stop(), 0);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  ...opts,
  name: "startup errors name what is wrong",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "hearth-test-cfg-" });
    try {
      const bad = join(dir, "bad.yaml");
      await Deno.writeTextFile(bad, "model: test/fixtures/models/llama-f32\nstop-sequence: ['x']\n");
      const unknown = await runServeOnce([bad]);
      assertEquals(unknown.code, 2);
      assert(unknown.stderr.includes("'stop-sequence'"), unknown.stderr);

      const mistyped = join(dir, "mistyped.yaml");
      await Deno.writeTextFile(mistyped, "model: test/fixtures/models/llama-f32\nport: eighty\n");
      const typed = await runServeOnce([mistyped]);
      assertEquals(typed.code, 2);
      assert(typed.stderr.includes("'port'"), typed.stderr);

      // No machine has 100 GPUs: a CUDA device that is not there is refused before loading, saying why.
      const cuda = await runServeOnce(["--model", "test/fixtures/models/llama-f32", "--device", "cuda:99"]);
      assertEquals(cuda.code, 2);
      assert(cuda.stderr.includes("no such CUDA device"), cuda.stderr);

      const dtype = await runServeOnce(["--model", "test/fixtures/models/llama-f32", "--dtype", "int3"]);
      assertEquals(dtype.code, 2);
      assert(dtype.stderr.includes("int3"), dtype.stderr);

      const noModel = await runServeOnce(["--port", "0"]);
      assertEquals(noModel.code, 2);
      assert(noModel.stderr.includes("'model' is required"), noModel.stderr);

      const missing = await runServeOnce(["--model", join(dir, "nope"), "--port", "0", "--no-auth"]);
      assertEquals(missing.code, 1);
      assert(missing.stderr.includes("could not load the model"), missing.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  ...opts,
  name: "--quantize int8 quantizes at load, prints the memory saved, and serves",
  fn: async () => {
    const server = await startServer({ args: ["--quantize", "int8", "--log-level", "INFO"] });
    try {
      const line = await server.waitForLine(/quantized to q8_0 at load/);
      assert(/saved \d+\.\d MiB/.test(line), line);
      const res = await fetch(`${server.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${server.token}` },
        body: JSON.stringify({ prompt: "Once", max_tokens: 4, ignore_eos: true, temperature: 0 }),
      });
      assertEquals(res.status, 200);
      const body = await res.json();
      assertEquals(body.usage.completion_tokens, 4);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  ...opts,
  name: "--config FILE: auth-token, chat-template file and kwargs (file, then request), JSON log lines",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "hearth-test-cfg-" });
    try {
      const template = join(dir, "greeting.jinja");
      await Deno.writeTextFile(
        template,
        "{{ greeting }} {{ name }}:{% for m in messages %} {{ m.content }}{% endfor %}",
      );
      const configPath = join(dir, "hearth.yaml");
      await Deno.writeTextFile(
        configPath,
        [
          "auth-token: yaml-token-1",
          `chat-template: ${template}`,
          "chat-template-kwargs: { greeting: hello, name: yaml }",
          "log-format: json",
          "log-level: INFO",
        ].join("\n"),
      );
      const server = await startServer({ args: ["--config", configPath], token: "yaml-token-1" });
      try {
        assert(!server.stderr.some((l) => l.includes("yaml-token-1")), server.stderr.join("\n"));
        assertEquals(await exists(server.tokenFile), false);
        const chat = async (id: string, extra: Record<string, unknown>) => {
          const res = await fetch(`${server.url}/v1/chat/completions`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              authorization: "Bearer yaml-token-1",
              "x-request-id": id,
            },
            body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 2, ...extra }),
          });
          assertEquals(res.status, 200);
          await res.json();
          await server.waitForLine(new RegExp(`"msg":"Usage: .*"request_id":"${id}"`));
        };
        await chat("kw-file", {});
        await chat("kw-request", { chat_template_kwargs: { name: "request" } });

        // Past the banner (plain text, for people), every line is one JSON record.
        const banner = /^(hearth: listening on |hearth auth token: |clients must send |curl -H )/;
        const records = server.stderr.filter((l) => !banner.test(l)).map((l) => JSON.parse(l));
        assert(records.some((r) => r.msg === `chat template: file ${template}`), server.stderr.join("\n"));
        const prompt = (id: string) =>
          records.find((r) => r.request_id === id && String(r.msg).startsWith("Formatted prompt"))?.msg;
        assertEquals(prompt("kw-file"), `Formatted prompt: ${JSON.stringify("hello yaml: hi")}`);
        assertEquals(prompt("kw-request"), `Formatted prompt: ${JSON.stringify("hello request: hi")}`);
        for (const r of records.filter((r) => r.request_id !== undefined)) {
          assert(["kw-file", "kw-request"].includes(r.request_id), JSON.stringify(r));
          assert(typeof r.time === "string" && typeof r.level === "string", JSON.stringify(r));
        }
      } finally {
        assertEquals(await server.stop(), 0, server.stderr.join("\n"));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  ...opts,
  name: "--shutdown-timeout bounds the wait: a request that never finishes does not keep the server up",
  fn: async () => {
    const server = await startServer({ args: ["--shutdown-timeout", "1"] });
    const tokenFile = server.tokenFile;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const encoder = new TextEncoder();
    try {
      // A first request on the connection makes sure the server is reading from it.
      await conn.write(encoder.encode("GET /health HTTP/1.1\r\nHost: hearth\r\n\r\n"));
      const buffer = new Uint8Array(4096);
      const n = await conn.read(buffer);
      assert(new TextDecoder().decode(buffer.subarray(0, n ?? 0)).startsWith("HTTP/1.1 200"));
      // Then one whose body never arrives in full.
      await conn.write(encoder.encode(
        "POST /v1/completions HTTP/1.1\r\nHost: hearth\r\n" +
          `Authorization: Bearer ${server.token}\r\nContent-Type: application/json\r\n` +
          'Content-Length: 1000\r\n\r\n{"prompt": ',
      ));
      await new Promise((resolve) => setTimeout(resolve, 500));
      const signalled = performance.now();
      server.child.kill("SIGTERM");
      await server.waitForLine(/grace period over/);
      const graceMs = performance.now() - signalled;
      assertEquals(await server.stop(null), 0, server.stderr.join("\n"));
      const exitMs = performance.now() - signalled;
      // It waited for the grace period (1 s), then at most the 2 s it gives aborted streams to end.
      assert(graceMs >= 900, `grace period over after ${graceMs} ms`);
      assert(exitMs < 1000 + 2000 + 3000, `exited ${exitMs} ms after SIGTERM`);
      assertEquals(await exists(tokenFile), false);
    } finally {
      conn.close();
      await server.stop();
    }
  },
});
