import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../../test/assert.ts";
import { chatChunks, completionChunks } from "../../test/client/fake_fetch.ts";
import { type ClientIo, runClient } from "./client.ts";
import { memoryOutput } from "./client/output.ts";

/** An OpenAI-ish server in this process that records request bodies. */
function fakeServer(options: { models?: boolean; loading?: boolean } = {}) {
  const bodies: Record<string, unknown>[] = [];
  const auth: (string | null)[] = [];
  const paths: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    auth.push(req.headers.get("authorization"));
    paths.push(path);
    if (path === "/health") {
      return options.loading
        ? Response.json({ status: "loading" }, { status: 503 })
        : Response.json({ status: "ok" });
    }
    if (path === "/v1/models") {
      return options.models === false
        ? new Response("not found", { status: 404 })
        : Response.json({ object: "list", data: [{ id: "fake-model" }] });
    }
    const body = await req.json();
    bodies.push(body);
    const chunks = path === "/v1/chat/completions"
      ? chatChunks(["Hi", " there"])
      : completionChunks([" upon", " a time"]);
    const text = chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n";
    return new Response(text, { headers: { "content-type": "text/event-stream" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1`,
    bodies,
    auth,
    paths,
    close: () => server.shutdown(),
  };
}

function io(stdin = "", stdinIsTerminal = false): ClientIo & { output: ReturnType<typeof memoryOutput> } {
  return {
    output: memoryOutput(),
    stdinIsTerminal,
    stdin: new Response(stdin).body!,
  };
}

Deno.test("--help prints the options; bad flags exit 2 with one line", async () => {
  const help = io();
  assertEquals(await runClient(["--help"], help), 0);
  assertStringIncludes(help.output.stdout, "--completion VALUE");
  assertStringIncludes(help.output.stdout, "--stop VALUE");
  for (
    const [args, reason] of [
      [["--nope"], "unknown option --nope"],
      [["--max-tokens", "x"], "--max-tokens expects an integer"],
      [["--message", "a", "--completion", "b"], "give only one of"],
      [["a.yaml", "b.yaml"], "unexpected arguments: b.yaml"],
      [["/no/such/client.yaml"], "cannot read config file /no/such/client.yaml"],
    ] as const
  ) {
    const bad = io();
    assertEquals(await runClient([...args], bad), 2, args.join(" "));
    assertEquals(bad.output.stderr.length, 1);
    assertStringIncludes(bad.output.stderr[0], `hearth client: ${reason}`);
  }
});

Deno.test("modes against a fake server: message, completion, stdin, health, models", async () => {
  const server = fakeServer();
  try {
    const base = ["--url", server.url, "--auth-token", "tok"];
    const msg = io();
    assertEquals(await runClient([...base, "--message", "Hello", "--system", "Be brief."], msg), 0);
    assertEquals(msg.output.stdout, "Hi there\n");
    assertEquals(server.bodies[0].messages, [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hello" },
    ]);
    assertEquals(server.bodies[0].model, "fake-model");
    assertEquals(server.auth.every((a) => a === "Bearer tok"), true);

    const completion = io();
    assertEquals(await runClient([...base, "--completion", "Once", "--show-usage"], completion), 0);
    assertEquals(completion.output.stdout, "Once upon a time\n");
    assertStringIncludes(completion.output.stderr[0], "usage: ");

    const noEcho = io();
    assertEquals(await runClient([...base, "--completion", "Once", "--no-echo"], noEcho), 0);
    assertEquals(noEcho.output.stdout, " upon a time\n");

    const piped = io("Once\n");
    assertEquals(await runClient([...base, "--max-tokens", "8"], piped), 0);
    assertEquals(piped.output.stdout, "Once upon a time\n");
    assertEquals(server.bodies.at(-1)!.prompt, "Once");
    assertEquals(server.bodies.at(-1)!.max_tokens, 8);

    const empty = io("\n");
    assertEquals(await runClient(base, empty), 2);
    assertStringIncludes(empty.output.stderr[0], "stdin is empty");

    const health = io();
    assertEquals(await runClient([...base, "--health"], health), 0);
    assertEquals(health.output.stdout, '{"status":"ok"}\n');

    const models = io();
    assertEquals(await runClient([...base, "--list-models"], models), 0);
    assertEquals(models.output.stdout, "fake-model\n");
  } finally {
    await server.close();
  }
});

Deno.test("a config file gives the options; flags override it", async () => {
  const server = fakeServer({ models: false });
  const dir = await Deno.makeTempDir();
  try {
    const config = join(dir, "client.yaml");
    await Deno.writeTextFile(
      config,
      `url: ${server.url}\nauth-token: tok\nmax-tokens: 64\ntemperature: 0.1\nstop: ["\\n"]\n` +
        "top-k: 40\nrepetition-penalty: 1.2\nno-echo: true\n",
    );
    const out = io();
    assertEquals(
      await runClient([config, "--completion", "Once", "--max-tokens", "5", "--stop", "END"], out),
      0,
    );
    assertEquals(out.output.stdout, " upon a time\n");
    const body = server.bodies[0];
    // No /v1/models (404): no model is named.
    assertEquals("model" in body, false);
    assertEquals([body.max_tokens, body.temperature, body.stop, body.top_k, body.repetition_penalty], [
      5,
      0.1,
      ["END"],
      40,
      1.2,
    ]);
    const viaFlag = io();
    assertEquals(await runClient(["--config", config, "--health"], viaFlag), 0);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unreachable server is exit 1 with one line", async () => {
  const server = fakeServer();
  const url = server.url;
  await server.close();
  const out = io();
  assertEquals(await runClient(["--url", url, "--auth-token", "t", "--message", "hi"], out), 1);
  assertEquals(out.output.stderr.length, 1);
  assert(
    out.output.stderr[0].startsWith(`hearth client: cannot reach ${url}/models: `),
    out.output.stderr[0],
  );
});

Deno.test("--model, --stop repeated and every pass-through option reach the request body", async () => {
  const server = fakeServer();
  try {
    const args = [
      "--url",
      server.url,
      "--auth-token",
      "tok",
      "-m",
      "chosen-model",
      "--max-tokens",
      "7",
      "--temperature",
      "0.3",
      "--top-p",
      "0.9",
      "--stop",
      "END",
      "--stop",
      "\n\n",
      "--repetition-penalty",
      "1.3",
      "--no-repeat-ngram-size",
      "4",
      "--top-k",
      "20",
      "--num-beams",
      "2",
      "--min-length",
      "3",
      "--seed",
      "11",
      "--ignore-eos",
    ];
    const expected = {
      model: "chosen-model",
      max_tokens: 7,
      temperature: 0.3,
      top_p: 0.9,
      stop: ["END", "\n\n"],
      repetition_penalty: 1.3,
      no_repeat_ngram_size: 4,
      top_k: 20,
      num_beams: 2,
      min_length: 3,
      seed: 11,
      ignore_eos: true,
      stream: true,
    };
    const completion = io();
    assertEquals(await runClient([...args, "--completion", "Once"], completion), 0);
    assertEquals(server.bodies[0], { ...expected, prompt: "Once" });
    const chat = io();
    assertEquals(await runClient([...args, "--message", "Hi"], chat), 0);
    assertEquals(server.bodies[1], { ...expected, messages: [{ role: "user", content: "Hi" }] });
    // A model given is not looked up.
    assertEquals(server.paths.includes("/v1/models"), false);
  } finally {
    await server.close();
  }
});

Deno.test("a connection that breaks mid-reply is exit 1 with one line, after the text it brought", async () => {
  // A raw HTTP server that sends one chunk of an event stream and then closes the connection.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const encoder = new TextEncoder();
  const serving = (async () => {
    for await (const conn of listener) {
      await conn.read(new Uint8Array(65536));
      const event = `data: ${JSON.stringify(completionChunks([" upon"])[0])}\n\n`;
      await conn.write(encoder.encode(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n" +
          `${event.length.toString(16)}\r\n${event}\r\n`,
      ));
      await new Promise((r) => setTimeout(r, 50));
      conn.close();
    }
  })();
  try {
    const url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/v1`;
    const out = io();
    const args = ["--url", url, "--auth-token", "t", "--model", "m", "--completion", "Once"];
    assertEquals(await runClient(args, out), 1);
    assertEquals(out.output.stdout, "Once upon");
    assertEquals(out.output.stderr.length, 1);
    assertStringIncludes(
      out.output.stderr[0],
      `hearth client: ${url}/completions: the connection broke before the answer ended: `,
    );
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
});

Deno.test("--health of a server still loading: its answer on stdout, exit 1 with one line", async () => {
  const server = fakeServer({ loading: true });
  try {
    const out = io();
    assertEquals(await runClient(["--url", server.url, "--health"], out), 1);
    assertEquals(out.output.stdout, '{"status":"loading"}\n');
    assertEquals(out.output.stderr, [
      `hearth client: ${server.url.replace(/\/v1$/, "")}/health answered HTTP 503: not ready`,
    ]);
  } finally {
    await server.close();
  }
});
