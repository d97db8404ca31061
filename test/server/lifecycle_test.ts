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
      const server = await startServer({ args: [configPath, "--served-model-name", "from-flag"] });
      try {
        assertEquals(server.token, "operator-token-123");
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

      const cuda = await runServeOnce(["--model", "test/fixtures/models/llama-f32", "--device", "cuda:0"]);
      assertEquals(cuda.code, 2);
      assert(cuda.stderr.includes("CUDA backend not built"), cuda.stderr);

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
