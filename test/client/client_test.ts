/**
 * The client as a subprocess against the real server (real engine, fixture model): every one-shot
 * mode, the `echo ... | client` pipeline, token auto-discovery for 127.0.0.1 and localhost, explicit
 * tokens, the extra generation parameters, and the one-line errors. One server for the whole file.
 */

import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { startServer } from "../server/process.ts";
import { clientCommand, runClientProcess, runShell, shellQuote } from "./client_process.ts";

Deno.test({
  name: "client subprocess against the real server (llama-f32)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const server = await startServer({ args: ["--served-model-name", "tiny-llama", "--log-level", "INFO"] });
    const url = `${server.url}/v1`;
    const localhostUrl = `http://localhost:${server.port}/v1`;
    // The client finds the server's token through the same XDG_CONFIG_HOME.
    const client = (args: string[], stdin?: string) =>
      runClientProcess(["--url", url, ...args], { configHome: server.configHome, stdin });
    const scratch = await Deno.makeTempDir({ prefix: "hearth-client-test-" });
    try {
      await t.step("--health", async () => {
        const run = await client(["--health"]);
        assertEquals([run.code, run.stdout, run.stderr], [0, '{"status":"ok"}\n', ""]);
      });

      await t.step("--list-models, with the token from the token file", async () => {
        const run = await client(["--list-models"]);
        assertEquals([run.code, run.stdout, run.stderr], [0, "tiny-llama\n", ""]);
      });

      await t.step("--message: one chat turn streamed to stdout, usage on stderr", async () => {
        // Seeded: unseeded, the random fixture model ends with EOS at once in about 1 of 300 runs (empty text).
        const run = await client(["--message", "Hello", "--max-tokens", "8", "--show-usage", "--seed", "1"]);
        assertEquals(run.code, 0, run.stderr);
        assert(run.stdout.endsWith("\n") && run.stdout.length > 1, JSON.stringify(run.stdout));
        assert(/^usage: prompt_tokens=\d+, completion_tokens=[1-8], /.test(run.stderr), run.stderr);
        assertStringIncludes(server.stderr.join("\n"), "New chat completion request: model=tiny-llama");
      });

      let greedy = "";
      await t.step("--completion echoes the prompt unless --no-echo", async () => {
        const args = ["--max-tokens", "8", "--temperature", "0", "--ignore-eos"];
        const echoed = await client(["--completion", "Once upon a time", ...args]);
        const bare = await client(["--completion", "Once upon a time", "--no-echo", ...args]);
        assertEquals([echoed.code, bare.code], [0, 0], echoed.stderr + bare.stderr);
        greedy = bare.stdout;
        assert(greedy.length > 1);
        assertEquals(echoed.stdout, "Once upon a time" + greedy);
        assertEquals(echoed.stderr, "");
      });

      await t.step('pipeline: echo "Once upon a time" | client --max-tokens 8', async () => {
        const cmd = [
          ...clientCommand(),
          "--url",
          url,
          "--max-tokens",
          "8",
          "--temperature",
          "0",
          "--ignore-eos",
        ]
          .map(shellQuote).join(" ");
        const run = await runShell(`echo "Once upon a time" | ${cmd} --show-usage | cat`, {
          XDG_CONFIG_HOME: server.configHome,
        });
        assertEquals(run.code, 0, run.stderr);
        // Same as --completion: the newline echo adds is not part of the prompt; stdout is only text.
        assertEquals(run.stdout, "Once upon a time" + greedy);
        assert(/^usage: prompt_tokens=\d+, completion_tokens=8, /.test(run.stderr), run.stderr);
      });

      await t.step("auth auto-discovery for localhost too", async () => {
        const run = await runClientProcess(
          [
            "--url",
            localhostUrl,
            "--completion",
            "Once upon a time",
            "--no-echo",
            "--max-tokens",
            "8",
            "--temperature",
            "0",
            "--ignore-eos",
          ],
          { configHome: server.configHome },
        );
        assertEquals([run.code, run.stdout, run.stderr], [0, greedy, ""]);
      });

      await t.step("--auth-token and --auth-token-file", async () => {
        const file = join(scratch, "token");
        await Deno.writeTextFile(file, server.token + "\n");
        const empty = join(scratch, "empty-xdg");
        await Deno.mkdir(empty);
        const fromFile = await runClientProcess(["--url", url, "--list-models", "--auth-token-file", file], {
          configHome: empty,
        });
        assertEquals([fromFile.code, fromFile.stdout], [0, "tiny-llama\n"], fromFile.stderr);
        const fromFlag = await runClientProcess([
          "--url",
          url,
          "--list-models",
          "--auth-token",
          server.token!,
        ], {
          configHome: empty,
        });
        assertEquals([fromFlag.code, fromFlag.stdout], [0, "tiny-llama\n"], fromFlag.stderr);
      });

      await t.step("401: no token found, or a wrong one: exit 1 with one line", async () => {
        const empty = join(scratch, "no-token-xdg");
        await Deno.mkdir(empty);
        const none = await runClientProcess(["--url", url, "--message", "hi"], { configHome: empty });
        assertEquals([none.code, none.stdout], [1, ""]);
        assertEquals(none.stderr.trimEnd().split("\n").length, 1, none.stderr);
        assertStringIncludes(none.stderr, "hearth client: HTTP 401");
        assertStringIncludes(none.stderr, `no token file at ${join(empty, "hearth", "inference")}`);
        const wrong = await client(["--message", "hi", "--auth-token", "0".repeat(64)]);
        assertEquals([wrong.code, wrong.stdout], [1, ""]);
        assertEquals(
          wrong.stderr,
          `hearth client: HTTP 401 from ${url}/models: Incorrect bearer token provided (sent the token from --auth-token)\n`,
        );
      });

      await t.step("extra generation parameters and a repeated --stop reach the server", async () => {
        const run = await client([
          "--completion",
          "Once",
          "--max-tokens",
          "6",
          "--top-p",
          "0.8",
          "--repetition-penalty",
          "1.2",
          "--no-repeat-ngram-size",
          "3",
          "--top-k",
          "40",
          "--seed",
          "42",
          "--min-length",
          "2",
          "--ignore-eos",
          "--stop",
          "QQQZZZ",
          "--stop",
          "XXYY",
          "--show-usage",
        ]);
        assertEquals(run.code, 0, run.stderr);
        assertStringIncludes(run.stderr, "completion_tokens=6");
        const line = await server.waitForLine(/New completion request: .*seed=42/);
        for (
          const part of [
            "top_p=0.8",
            "top_k=40",
            "repetition_penalty=1.2",
            'stop=["QQQZZZ","XXYY"]',
            "ignore_eos=true",
          ]
        ) {
          assertStringIncludes(line, part);
        }
      });

      await t.step(
        "a parameter the server refuses: its one-line error, exit 1, nothing on stdout",
        async () => {
          const run = await client(["--completion", "Once", "--num-beams", "2"]);
          assertEquals([run.code, run.stdout], [1, ""]);
          assertEquals(
            run.stderr,
            `hearth client: HTTP 400 from ${url}/completions: 'num_beams' is not supported by this server yet\n`,
          );
        },
      );

      await t.step("a YAML config file as the positional argument; flags override it", async () => {
        const config = join(scratch, "client.yaml");
        await Deno.writeTextFile(
          config,
          `url: ${url}\nmax-tokens: 64\ntemperature: 0\ntop-k: 7\nno-echo: true\nignore-eos: true\n` +
            `stop: [QQQZZZ]\nseed: 7007\n`,
        );
        const run = await runClientProcess(
          [config, "--completion", "Once upon a time", "--max-tokens", "8"],
          {
            configHome: server.configHome,
          },
        );
        // no-echo, greedy and ignore-eos from the file, 8 tokens from the flag.
        assertEquals([run.code, run.stdout, run.stderr], [0, greedy, ""]);
        const line = await server.waitForLine(/New completion request: .*seed=7007/);
        for (
          const part of ["max_tokens=8,", "temperature=0,", "top_k=7,", 'stop=["QQQZZZ"]', "ignore_eos=true"]
        ) {
          assertStringIncludes(line, part);
        }
        const echoed = await runClientProcess(
          [config, "--completion", "Once upon a time", "--max-tokens", "8", "--echo", "--stop", "ZZQQ"],
          { configHome: server.configHome },
        );
        assertEquals([echoed.code, echoed.stdout], [0, "Once upon a time" + greedy], echoed.stderr);
        const second = server.stderr.filter((l) => /New completion request: .*seed=7007/.test(l)).at(-1)!;
        assertStringIncludes(second, 'stop=["ZZQQ"]');
      });

      await t.step("a reader that closes stdout (| head -c 4) ends the client quietly, exit 0", async () => {
        const cmd = [
          ...clientCommand(),
          "--url",
          url,
          "--completion",
          "Once upon a time",
          "--max-tokens",
          "200",
          "--ignore-eos",
        ].map(shellQuote).join(" ");
        const run = await runShell(`(${cmd}; echo "client-exit=$?" >&2) | head -c 4`, {
          XDG_CONFIG_HOME: server.configHome,
        });
        assertEquals([run.code, run.stdout, run.stderr], [0, "Once", "client-exit=0\n"]);
      });

      await t.step("bad flags: exit 2 with one line", async () => {
        const run = await client(["--max-tokens", "many"]);
        assertEquals([run.code, run.stdout], [2, ""]);
        assertEquals(
          run.stderr,
          "hearth client: --max-tokens expects an integer, got 'many' (--help lists the options)\n",
        );
      });
    } finally {
      await server.stop();
      await Deno.remove(scratch, { recursive: true });
    }

    await t.step("server down: exit 1 with one line", async () => {
      const run = await runClientProcess(["--url", url, "--message", "hi", "--auth-token", "x"]);
      assertEquals([run.code, run.stdout], [1, ""]);
      assertEquals(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
      assertStringIncludes(run.stderr, `hearth client: cannot reach ${url}/models: connection refused`);
    });
  },
});

/** Whether this machine can listen on the IPv6 loopback. */
function hasIpv6Loopback(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

const ipv6 = hasIpv6Loopback();
if (!ipv6) console.warn("SKIPPED the [::1] auth auto-discovery test: no IPv6 loopback on this machine");

Deno.test({
  name: "auth auto-discovery against a server on [::1]",
  ignore: !ipv6,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // startServer reads the port and waits for /health on 127.0.0.1; for [::1] this test does both.
    const server = await startServer({ args: ["--host", "::1"], waitReady: false });
    try {
      const listening = await server.waitForLine(/listening on http:\/\/\[::1\]:\d+/);
      const port = Number(/\[::1\]:(\d+)/.exec(listening)![1]);
      const url = `http://[::1]:${port}/v1`;
      const deadline = Date.now() + 30_000;
      while (true) {
        const run = await runClientProcess(["--url", url, "--health"], { configHome: server.configHome });
        if (run.code === 0) break;
        if (Date.now() > deadline) throw new Error(`server on [::1] not ready: ${run.stdout}${run.stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const models = await runClientProcess(["--url", url, "--list-models"], {
        configHome: server.configHome,
      });
      assertEquals([models.code, models.stdout, models.stderr], [0, "llama-f32\n", ""]);
      const message = await runClientProcess(["--url", url, "--message", "Hi", "--max-tokens", "4"], {
        configHome: server.configHome,
      });
      assertEquals([message.code, message.stderr], [0, ""]);
      assert(message.stdout.length > 1, JSON.stringify(message.stdout));
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "tokens reach stdout as they arrive, before the reply ends",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // A server that sends the first piece and holds the rest until the test has seen it on stdout.
    let release!: () => void;
    const released = new Promise<void>((r) => release = r);
    const encoder = new TextEncoder();
    const event = (text: string) =>
      encoder.encode(`data: ${JSON.stringify({ choices: [{ index: 0, text, finish_reason: null }] })}\n\n`);
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      if (new URL(req.url).pathname !== "/v1/completions") return new Response("no", { status: 404 });
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(event(" upon"));
          await released;
          controller.enqueue(event(" a time"));
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    });
    const [cmd, ...base] = clientCommand();
    const child = new Deno.Command(cmd, {
      args: [
        ...base,
        "--url",
        `http://127.0.0.1:${server.addr.port}/v1`,
        "--auth-token",
        "t",
        "--model",
        "m",
        "--completion",
        "Once",
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const decoder = new TextDecoder();
    let stdout = "";
    let seenEarly = "";
    const timer = setTimeout(release, 20_000);
    try {
      for await (const bytes of child.stdout) {
        stdout += decoder.decode(bytes, { stream: true });
        if (!seenEarly && stdout.includes(" upon")) {
          seenEarly = stdout;
          release();
        }
      }
      const status = await child.status;
      assertEquals([status.code, await stderr], [0, ""]);
      assertEquals(seenEarly, "Once upon", "the first piece did not show before the reply ended");
      assertEquals(stdout, "Once upon a time\n");
    } finally {
      clearTimeout(timer);
      release();
      await server.shutdown();
    }
  },
});
