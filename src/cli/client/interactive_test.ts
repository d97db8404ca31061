import { assertEquals } from "../../../test/assert.ts";
import {
  brokenSseResponse,
  chatChunks,
  errorResponse,
  fakeFetch,
  sseResponse,
} from "../../../test/client/fake_fetch.ts";
import { ApiClient } from "./api.ts";
import { ASSISTANT_PREFIX, runChat, USER_PROMPT } from "./interactive.ts";
import { resolveOptions } from "./options.ts";
import { memoryOutput } from "./output.ts";

async function* script(lines: string[]): AsyncGenerator<string> {
  for (const line of lines) yield line;
}

Deno.test("two turns, /system, /clear, quit: the history each request carries", async () => {
  let turn = 0;
  const fake = fakeFetch(() => {
    turn++;
    return turn === 3 ? errorResponse(500, "engine hiccup") : sseResponse(chatChunks([`reply${turn}`]));
  });
  const api = new ApiClient({ baseUrl: "http://h/v1", token: null, fetch: fake.fetch });
  const out = memoryOutput();
  const code = await runChat({
    api,
    options: resolveOptions({}, { "show-usage": true }),
    model: "tiny",
    output: out,
    lines: script([
      "Hello",
      "",
      "/system Be brief.",
      "Second",
      "/nope",
      "fails",
      "/clear",
      "Third",
      "quit",
      "never",
    ]),
  });
  assertEquals(code, 0);
  const messages = fake.requests.map((r) => r.body!.messages);
  assertEquals(messages, [
    [{ role: "user", content: "Hello" }],
    [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hello" },
      { role: "assistant", content: "reply1" },
      { role: "user", content: "Second" },
    ],
    [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hello" },
      { role: "assistant", content: "reply1" },
      { role: "user", content: "Second" },
      { role: "assistant", content: "reply2" },
      { role: "user", content: "fails" },
    ],
    // The failed turn left no trace; /clear kept the system prompt.
    [{ role: "system", content: "Be brief." }, { role: "user", content: "Third" }],
  ]);
  assertEquals(fake.requests.every((r) => r.body!.model === "tiny" && r.body!.stream === true), true);
  const stdout = out.stdout;
  assertEquals(stdout.includes(`${ASSISTANT_PREFIX}reply1\n`), true);
  assertEquals(stdout.includes("(system prompt set)"), true);
  assertEquals(stdout.includes("unknown command /nope"), true);
  assertEquals(stdout.includes("(conversation cleared)"), true);
  assertEquals(stdout.split(USER_PROMPT).length - 1, 9);
  assertEquals(out.stderr.filter((l) => l.startsWith("usage: ")).length, 3);
  assertEquals(out.stderr.some((l) => l.includes("HTTP 500") && l.includes("engine hiccup")), true);
});

Deno.test("end of input ends the chat; /help and /system alone", async () => {
  const fake = fakeFetch(() => sseResponse(chatChunks(["x"])));
  const api = new ApiClient({ baseUrl: "http://h/v1", token: null, fetch: fake.fetch });
  const out = memoryOutput();
  await runChat({
    api,
    options: resolveOptions({}, { system: "S" }),
    model: undefined,
    output: out,
    lines: script(["/help", "/system", "hi"]),
  });
  assertEquals(fake.requests.length, 1);
  assertEquals(fake.requests[0].body!.messages, [{ role: "user", content: "hi" }]);
  assertEquals("model" in fake.requests[0].body!, false);
  assertEquals(out.stdout.includes("/clear"), true);
  assertEquals(out.stdout.includes("(system prompt removed)"), true);
  assertEquals(out.stdout.endsWith(`${USER_PROMPT}\n`), true);
});

Deno.test("Ctrl-C during a reply stops it and drops the turn", async () => {
  const encoder = new TextEncoder();
  let calls = 0;
  const fake = fakeFetch((req) => {
    calls++;
    if (calls > 1) return sseResponse(chatChunks(["ok"]));
    // A reply that streams one piece and then waits until the request is aborted.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(chatChunks(["partial"])[1])}\n\n`));
        req.signal!.addEventListener(
          "abort",
          () => controller.error(new DOMException("aborted", "AbortError")),
        );
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const api = new ApiClient({ baseUrl: "http://h/v1", token: null, fetch: fake.fetch });
  const out = memoryOutput();
  let listening = 0;
  await runChat({
    api,
    options: resolveOptions({}, {}),
    model: "m",
    output: out,
    lines: script(["long one", "next"]),
    onInterrupt: (abort) => {
      listening++;
      if (listening === 1) setTimeout(abort, 20);
      return () => listening--;
    },
  });
  assertEquals(out.stdout.includes("partial"), true);
  assertEquals(out.stderr.includes("(interrupted: the reply is not kept)"), true);
  assertEquals(fake.requests[1].body!.messages, [{ role: "user", content: "next" }]);
});

Deno.test("a reply whose connection breaks is reported on stderr, dropped, and the chat goes on", async () => {
  let calls = 0;
  const fake = fakeFetch(() => {
    calls++;
    return calls === 1
      ? brokenSseResponse(chatChunks(["partial"]).slice(0, 2))
      : sseResponse(chatChunks(["ok"]));
  });
  const api = new ApiClient({ baseUrl: "http://h/v1", token: null, fetch: fake.fetch });
  const out = memoryOutput();
  const code = await runChat({
    api,
    options: resolveOptions({}, {}),
    model: "m",
    output: out,
    lines: script(["first", "second", "quit"]),
    onInterrupt: () => () => {},
  });
  assertEquals(code, 0);
  assertEquals(out.stdout.includes(`${ASSISTANT_PREFIX}partial\n`), true);
  assertEquals(out.stderr, [
    out.stderr[0],
    "hearth client: http://h/v1/chat/completions: the connection broke before the answer ended: " +
    "error reading a body from connection",
  ]);
  assertEquals(fake.requests[1].body!.messages, [{ role: "user", content: "second" }]);
  assertEquals(out.stdout.includes(`${ASSISTANT_PREFIX}ok\n`), true);
});
