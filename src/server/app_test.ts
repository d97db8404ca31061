/**
 * The app in-process: real routes, tokenizer and chat template over the deterministic fake engine.
 * The real engine and process are covered by test/server/*_test.ts.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  ChatCompletionChunkSchema,
  ChatCompletionSchema,
  CompletionSchema,
  ErrorBodySchema,
  ModelListSchema,
} from "../api/openai.ts";
import { ChatTemplate, resolveChatTemplate } from "../model/chat_template.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { createApp, createLoadingApp } from "./app.ts";
import { appConfig } from "./context.ts";
import { Lifecycle } from "./lifecycle.ts";
import { Logger } from "./logger.ts";
import { FIXTURE_MODEL, fixtureTokenizer, makeApp, parseSse } from "../../test/server/helpers.ts";

const EOS = 2;

/** A fake engine script: answer " Hello world!" then EOS. */
async function helloScript() {
  const tokenizer = await fixtureTokenizer();
  const ids = [...tokenizer.encode(" Hello world!"), EOS];
  return { ids, script: () => ids };
}

async function errorOf(res: Response) {
  const body = ErrorBodySchema.parse(await res.json());
  return { status: res.status, ...body.error };
}

Deno.test("health is 200 when ready, 503 while loading and draining", async () => {
  const t = await makeApp();
  assertEquals((await t.get("/health")).status, 200);
  t.lifecycle.drain();
  assertEquals((await t.get("/health")).status, 503);

  const lifecycle = new Lifecycle("loading");
  const loading = createLoadingApp(
    appConfig({ authToken: "secret" }),
    new Logger({ sink: () => {} }),
    lifecycle,
  );
  const health = await loading.request("/health");
  assertEquals(health.status, 503);
  assertEquals(await health.json(), { status: "loading" });
  const api = await loading.request("/v1/models", { headers: { authorization: "Bearer secret" } });
  assertEquals((await errorOf(api)).code, "model_loading");
  assertEquals((await loading.request("/v1/models")).status, 401);
});

Deno.test("models: list and retrieve the served name", async () => {
  const t = await makeApp({ config: { servedModelName: "org/tiny" } });
  const list = ModelListSchema.parse(await (await t.get("/v1/models")).json());
  assertEquals(list.data.map((m) => m.id), ["org/tiny"]);
  assertEquals(list.data[0].max_model_len, 256);
  assertEquals((await (await t.get("/v1/models/org/tiny")).json()).id, "org/tiny");
  const missing = await errorOf(await t.get("/v1/models/other"));
  assertEquals([missing.status, missing.code], [404, "model_not_found"]);
});

Deno.test("auth: bearer required except on /health, compared exactly", async () => {
  const t = await makeApp({ config: { authToken: "a".repeat(64) } });
  const none = await t.app.request("/v1/models");
  const e = await errorOf(none);
  assertEquals([e.status, e.type, e.code], [401, "authentication_error", "invalid_api_key"]);
  const wrong = await t.app.request("/v1/models", {
    headers: { authorization: `Bearer ${"a".repeat(63)}b` },
  });
  assertEquals(wrong.status, 401);
  await wrong.body?.cancel();
  const basic = await t.app.request("/v1/models", { headers: { authorization: "Basic abc" } });
  assertEquals((await errorOf(basic)).message.includes("Bearer"), true);
  assertEquals((await t.get("/v1/models")).status, 200);
  assertEquals((await t.app.request("/health")).status, 200);
  const post = await t.app.request("/v1/chat/completions", { method: "POST", body: "{}" });
  assertEquals(post.status, 401);
  await post.body?.cancel();
});

Deno.test("chat: whole response with usage, role and finish reason", async () => {
  const { ids, script } = await helloScript();
  const t = await makeApp({ engine: { script } });
  const res = await t.post("/v1/chat/completions", {
    model: "whatever-the-client-says",
    messages: [{ role: "user", content: "hi" }],
    temperature: 0,
  });
  assertEquals(res.status, 200);
  const body = ChatCompletionSchema.parse(await res.json());
  assertEquals(body.model, "tiny");
  assertEquals(body.choices[0].message, { role: "assistant", content: " Hello world!", refusal: null });
  assertEquals(body.choices[0].finish_reason, "stop");
  const prompt = t.engine.calls[0].prompt;
  assertEquals(t.tokenizer.decode(prompt), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  assertEquals(body.usage, {
    prompt_tokens: prompt.length,
    completion_tokens: ids.length,
    total_tokens: prompt.length + ids.length,
  });
  assert(body.id.startsWith("chatcmpl-"));
  assertEquals(res.headers.get("x-request-id"), body.id.slice("chatcmpl-".length));
});

Deno.test("chat: streamed chunks, role first, usage last, then [DONE]", async () => {
  const { ids, script } = await helloScript();
  const t = await makeApp({ engine: { script } });
  const res = await t.post("/v1/chat/completions", {
    messages: [{ role: "user", content: "hi" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  assertEquals(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const events = parseSse(await res.text());
  assertEquals(events.at(-1), "[DONE]");
  const chunks = events.slice(0, -1).map((e) => ChatCompletionChunkSchema.parse(e));
  assertEquals(chunks[0].choices[0].delta, { role: "assistant", content: "" });
  const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? "")).join("");
  assertEquals(text, " Hello world!");
  const finish = chunks.at(-2)!;
  assertEquals(finish.choices[0].finish_reason, "stop");
  assertEquals(finish.choices[0].delta, {});
  const usage = chunks.at(-1)!;
  assertEquals(usage.choices, []);
  assertEquals(usage.usage?.completion_tokens, ids.length);
  for (const c of chunks.slice(0, -1)) assertEquals(c.usage, null);
  assertEquals(new Set(chunks.map((c) => c.id)).size, 1);
});

Deno.test("chat: stream without include_usage has no usage field", async () => {
  const { script } = await helloScript();
  const t = await makeApp({ engine: { script } });
  const res = await t.post("/v1/chat/completions", {
    messages: [{ role: "user", content: "hi" }],
    stream: true,
  });
  const chunks = parseSse(await res.text()).slice(0, -1) as Record<string, unknown>[];
  for (const c of chunks) assert(!("usage" in c));
});

Deno.test("stop sequences: cut at the match, never streamed, finish_reason stop", async () => {
  const { script } = await helloScript();
  const t = await makeApp({ engine: { script }, config: { stopSequences: ["!"] } });
  const res = await t.post("/v1/chat/completions", {
    messages: [{ role: "user", content: "hi" }],
    stop: "orl",
    stream: true,
  });
  const chunks = parseSse(await res.text()).slice(0, -1).map((e) => ChatCompletionChunkSchema.parse(e));
  const text = chunks.map((c) => c.choices[0].delta.content ?? "").join("");
  assertEquals(text, " Hello w");
  assertEquals(chunks.at(-1)!.choices[0].finish_reason, "stop");
  // The engine sequence was ended as soon as the stop matched.
  assertEquals(t.engine.calls[0].cancelled, true);

  const server = await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }] });
  assertEquals((await server.json()).choices[0].message.content, " Hello world");
});

Deno.test("max_tokens and max_completion_tokens end with finish_reason length", async () => {
  const t = await makeApp();
  for (const field of ["max_tokens", "max_completion_tokens"]) {
    const res = await t.post("/v1/chat/completions", {
      messages: [{ role: "user", content: "abc" }],
      [field]: 3,
    });
    const body = ChatCompletionSchema.parse(await res.json());
    assertEquals(body.choices[0].finish_reason, "length");
    assertEquals(body.usage.completion_tokens, 3);
  }
});

Deno.test("ignore_eos: request field and server default reach the engine", async () => {
  const t = await makeApp({ config: { ignoreEos: true } });
  await (await t.post("/v1/completions", { prompt: "a", max_tokens: 2 })).json();
  await (await t.post("/v1/completions", { prompt: "a", max_tokens: 2, ignore_eos: false })).json();
  assertEquals(t.engine.calls.map((c) => c.params.ignoreEos), [true, false]);
});

Deno.test("sampling parameters: body and extra_body fields over generation_config defaults", async () => {
  const t = await makeApp({ engine: { defaults: { temperature: 0.7, topP: 0.9 } } });
  await (await t.post("/v1/completions", { prompt: "a" })).json();
  await (await t.post("/v1/completions", {
    prompt: "a",
    temperature: 0.2,
    top_p: 0.5,
    top_k: 7,
    min_p: 0.1,
    seed: 42,
    repetition_penalty: 1.1,
    presence_penalty: 0.5,
    frequency_penalty: -0.5,
    no_repeat_ngram_size: 3,
    min_tokens: 2,
    logit_bias: { "5": -100 },
    stop_token_ids: [7],
  })).json();
  const [d, r] = t.engine.calls.map((c) => c.params);
  assertEquals([d.temperature, d.topP, d.maxTokens, d.seed], [0.7, 0.9, 16, undefined]);
  assertEquals([r.temperature, r.topP, r.topK, r.minP, r.seed], [0.2, 0.5, 7, 0.1, 42]);
  assertEquals([r.repetitionPenalty, r.presencePenalty, r.frequencyPenalty], [1.1, 0.5, -0.5]);
  assertEquals([r.noRepeatNgramSize, r.minTokens, r.stopTokenIds], [3, 2, [7]]);
  assertEquals([...r.logitBias!], [[5, -100]]);
});

Deno.test("chat: max_tokens defaults to the rest of the context", async () => {
  const t = await makeApp({ engine: { maxContext: 64 } });
  await (await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }] })).json();
  const call = t.engine.calls[0];
  assertEquals(call.params.maxTokens, 64 - call.prompt.length);
});

Deno.test("completions: string, list of strings, token ids, lists of token ids", async () => {
  const t = await makeApp();
  const one = CompletionSchema.parse(
    await (await t.post("/v1/completions", { prompt: "abc", max_tokens: 3 })).json(),
  );
  assertEquals(one.object, "text_completion");
  assertEquals(one.choices.length, 1);
  assertEquals(one.choices[0].finish_reason, "length");

  const many = CompletionSchema.parse(
    await (await t.post("/v1/completions", { prompt: ["ab", "xyz"], max_tokens: 2 })).json(),
  );
  assertEquals(many.choices.map((c) => c.index), [0, 1]);
  assertEquals(many.usage?.completion_tokens, 4);
  const abIds = t.tokenizer.encode("ab");
  const xyzIds = t.tokenizer.encode("xyz");
  assertEquals(many.usage?.prompt_tokens, abIds.length + xyzIds.length);
  // The fake engine echoes the prompt: each choice's text comes from its own prompt.
  assertEquals(many.choices[0].text, t.tokenizer.decode([...abIds, ...abIds].slice(0, 2)));
  assertEquals(many.choices[1].text, t.tokenizer.decode([...xyzIds, ...xyzIds].slice(0, 2)));

  const ids = CompletionSchema.parse(
    await (await t.post("/v1/completions", { prompt: abIds, max_tokens: 1 })).json(),
  );
  assertEquals(t.engine.calls.at(-1)!.prompt, abIds);
  assertEquals(ids.choices.length, 1);
  const idLists = CompletionSchema.parse(
    await (await t.post("/v1/completions", { prompt: [abIds, xyzIds], max_tokens: 1 })).json(),
  );
  assertEquals(idLists.choices.length, 2);
});

Deno.test("completions: echo puts the prompt first, whole and streamed", async () => {
  const t = await makeApp();
  const body = CompletionSchema.parse(
    await (await t.post("/v1/completions", { prompt: "abc", echo: true, max_tokens: 2 })).json(),
  );
  assert(body.choices[0].text.startsWith("abc"));
  assert(body.choices[0].text.length > 3);
  const res = await t.post("/v1/completions", { prompt: "abc", echo: true, max_tokens: 2, stream: true });
  const chunks = parseSse(await res.text()).slice(0, -1).map((e) => CompletionSchema.parse(e));
  assertEquals(chunks[0].choices[0].text, "abc");
  assertEquals(chunks.map((c) => c.choices[0].text).join(""), body.choices[0].text);
});

Deno.test("completions: streaming several prompts tags chunks by index", async () => {
  const t = await makeApp();
  const res = await t.post("/v1/completions", {
    prompt: ["ab", "xyz"],
    max_tokens: 3,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = parseSse(await res.text()).slice(0, -1).map((e) => CompletionSchema.parse(e));
  const finishes = chunks.filter((c) => c.choices[0]?.finish_reason).map((c) => c.choices[0].index).sort();
  assertEquals(finishes, [0, 1]);
  assertEquals(chunks.at(-1)!.usage?.completion_tokens, 6);
});

Deno.test("completions: suffix uses the FIM tokens, or is refused without them", async () => {
  const t = await makeApp();
  await (await t.post("/v1/completions", { prompt: "def f(", suffix: "):", max_tokens: 1 })).json();
  const { fim } = t.tokenizer;
  assert(fim);
  assertEquals(t.engine.calls[0].prompt, [
    fim.prefix,
    ...t.tokenizer.encode("def f(", { addSpecialTokens: false }),
    fim.suffix,
    ...t.tokenizer.encode("):", { addSpecialTokens: false }),
    fim.middle,
  ]);

  const json = JSON.parse(await Deno.readTextFile(`${FIXTURE_MODEL}/tokenizer.json`));
  json.added_tokens = json.added_tokens.filter((a: { content: string }) => !a.content.includes("fim"));
  for (const name of ["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"]) delete json.model.vocab[name];
  const plain = new Tokenizer(json, {});
  assertEquals(plain.fim, null);
  const app = createApp({
    generator: t.engine,
    tokenizer: plain,
    chatTemplate: await resolveChatTemplate({ modelDir: "/nonexistent", tokenizer: plain }),
    config: appConfig(),
    logger: new Logger({ sink: () => {} }),
  });
  const res = await app.request("/v1/completions", {
    method: "POST",
    body: JSON.stringify({ prompt: "a", suffix: "b" }),
  });
  const e = await errorOf(res);
  assertEquals([e.status, e.param], [400, "suffix"]);
  assert(e.message.includes("fill-in-the-middle"));
});

Deno.test("text is streamed only as whole UTF-8 characters", async () => {
  const tokenizer = await fixtureTokenizer();
  const ids = tokenizer.encode("日本語 🙂👍🏽 ok");
  // The tiny vocabulary splits these characters over several byte-level tokens.
  assert(ids.length > 8);
  const t = await makeApp({ engine: { script: () => [...ids, EOS] } });
  const res = await t.post("/v1/completions", { prompt: "x", max_tokens: 64, stream: true });
  const chunks = parseSse(await res.text()).slice(0, -1).map((e) => CompletionSchema.parse(e));
  for (const c of chunks) assert(!c.choices[0].text.includes("\uFFFD"), JSON.stringify(c.choices[0].text));
  assertEquals(chunks.map((c) => c.choices[0].text).join(""), "日本語 🙂👍🏽 ok");
});

Deno.test("bad input: OpenAI error objects naming the field", async () => {
  const t = await makeApp({ config: { maxRequestBytes: 2048 } });
  const cases: [unknown, number, string | null, string | null][] = [
    ["{not json", 400, null, "invalid_json"],
    ["[1, 2]", 400, null, "invalid_json"],
    [{ messages: [{ role: "user", content: "x" }], temperature: "hot" }, 400, "temperature", "invalid_value"],
    [{ messages: [{ role: "user", content: "x" }], temperature: 3 }, 400, "temperature", "invalid_value"],
    [{ messages: [{ role: "user", content: "x" }], max_tokens: 0 }, 400, "max_tokens", "invalid_value"],
    [
      { messages: [{ role: "user", content: "x" }], max_completion_tokens: 2, min_tokens: 5 },
      400,
      "min_tokens",
      "invalid_value",
    ],
    [{ messages: [] }, 400, "messages", "invalid_value"],
    [{}, 400, "messages", "missing_required_parameter"],
    [{ messages: [{ role: "robot", content: "x" }] }, 400, "messages[0].role", "invalid_value"],
    [{ messages: [{ role: "user" }] }, 400, "messages[0].content", "missing_required_parameter"],
    [{ messages: [{ role: "system", content: null }] }, 400, "messages[0].content", "invalid_value"],
    [
      { messages: [{ role: "user", content: [{ type: "image_url", image_url: {} }] }] },
      400,
      "messages[0].content[0].type",
      "unsupported_content",
    ],
    [{ messages: [{ role: "user", content: "x" }], n: 2 }, 400, "n", "unsupported_parameter"],
    [
      { messages: [{ role: "user", content: "x" }], stream_options: { include_usage: true } },
      400,
      "stream_options",
      "invalid_value",
    ],
    [
      { messages: [{ role: "user", content: "x" }], stream: false, stream_options: { include_usage: true } },
      400,
      "stream_options",
      "invalid_value",
    ],
    [
      { messages: [{ role: "user", content: "x" }], logprobs: true },
      400,
      "logprobs",
      "unsupported_parameter",
    ],
    [
      { messages: [{ role: "user", content: "x" }], response_format: { type: "json_object" } },
      400,
      "response_format",
      "unsupported_parameter",
    ],
    [
      { messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f" } }] },
      400,
      "tools",
      "unsupported_parameter",
    ],
    [
      { messages: [{ role: "user", content: "x" }], logit_bias: { "9999": 1 } },
      400,
      "logit_bias",
      "invalid_value",
    ],
    [{ messages: [{ role: "user", content: "x".repeat(3000) }] }, 413, null, "request_too_large"],
  ];
  for (const [body, status, param, code] of cases) {
    const e = await errorOf(await t.post("/v1/chat/completions", body));
    assertEquals([e.status, e.param, e.code], [status, param, code], JSON.stringify(body).slice(0, 80));
    if (param) assert(e.message.includes(param), e.message);
  }
  const completionCases: [unknown, number, string | null][] = [
    [{ prompt: 5 }, 400, "prompt"],
    [{ prompt: [1, 99999] }, 400, "prompt"],
    [{ prompt: "" }, 400, "prompt"],
    [{ prompt: "x", best_of: 3 }, 400, "best_of"],
    [{ prompt: "x", logprobs: 2 }, 400, "logprobs"],
    [{ prompt: "x", stream_options: { include_usage: false } }, 400, "stream_options"],
  ];
  for (const [body, status, param] of completionCases) {
    const e = await errorOf(await t.post("/v1/completions", body));
    assertEquals([e.status, e.param], [status, param], JSON.stringify(body));
  }
  const unknown = await errorOf(await t.post("/v1/nope", {}));
  assertEquals([unknown.status, unknown.code], [404, "unknown_url"]);
  // None of these reached the engine.
  assertEquals(t.engine.calls.length, 0);
});

Deno.test("a prompt longer than the context is a 400 with both numbers", async () => {
  const t = await makeApp({ engine: { maxContext: 32 } });
  const e = await errorOf(await t.post("/v1/completions", { prompt: "word ".repeat(40) }));
  assertEquals([e.status, e.code, e.param], [400, "context_length_exceeded", "prompt"]);
  const promptTokens = t.tokenizer.encode("word ".repeat(40)).length;
  assert(e.message.includes("32") && e.message.includes(String(promptTokens)), e.message);
  assertEquals(t.engine.calls.length, 0);
});

Deno.test("unknown fields are accepted and logged at DEBUG; known no-ops are quiet", async () => {
  const t = await makeApp();
  const res = await t.post("/v1/completions", {
    prompt: "a",
    max_tokens: 1,
    shiny_new_field: 1,
    user: "u",
    store: false,
  });
  assertEquals(res.status, 200);
  const records = t.lines.map((l) => JSON.parse(l));
  const debug = records.find((r) => r.msg === "ignoring unknown request fields");
  assertEquals(debug?.fields, ["shiny_new_field"]);
  assertEquals(debug?.level, "DEBUG");
});

Deno.test("every log line of a request carries its id; INFO has the seed's lines", async () => {
  const t = await makeApp({ logLevel: "INFO" });
  const res = await t.post("/v1/chat/completions", {
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 2,
  });
  await res.json();
  const id = res.headers.get("x-request-id");
  const records = t.lines.map((l) => JSON.parse(l));
  assert(records.length >= 5);
  for (const r of records) assertEquals(r.request_id, id);
  const messages = records.map((r) => r.msg as string);
  for (
    const start of [
      "New chat completion request",
      "Message 0",
      "Formatted prompt",
      "Input token IDs",
      "Generated tokens with special tokens",
      "Response text (clean)",
      "Usage",
    ]
  ) {
    assert(messages.some((m) => m.startsWith(start)), `missing "${start}" in ${JSON.stringify(messages)}`);
  }
});

Deno.test("an engine error after the stream began is a final error event", async () => {
  const t = await makeApp({ engine: { failAfter: 3 } });
  const res = await t.post("/v1/completions", { prompt: "abcdef", max_tokens: 10, stream: true });
  assertEquals(res.status, 200);
  const events = parseSse(await res.text());
  const last = ErrorBodySchema.parse(events.at(-1));
  assertEquals(last.error.type, "server_error");
  assert(!events.includes("[DONE]"));
});

Deno.test("an engine error before any token keeps its HTTP status", async () => {
  const t = await makeApp({ engine: { failAfter: 0 } });
  const res = await t.post("/v1/completions", { prompt: "abc", stream: true });
  assertEquals((await errorOf(res)).status, 500);
});

Deno.test("a client that goes away cancels its generation", async () => {
  const t = await makeApp({ engine: { delayMs: 5 } });
  const res = await t.post("/v1/completions", { prompt: "abc", max_tokens: 200, stream: true });
  const reader = res.body!.getReader();
  await reader.read();
  await reader.cancel();
  for (let i = 0; i < 50 && !t.engine.calls[0].cancelled; i++) await new Promise((r) => setTimeout(r, 10));
  assertEquals(t.engine.calls[0].cancelled, true);
  assert(t.engine.calls[0].produced < 200);
  assertEquals(t.lifecycle.inFlight, 0);
});

Deno.test("concurrent requests all complete correctly", async () => {
  const t = await makeApp({ engine: { delayMs: 1 } });
  const prompts = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
  const results = await Promise.all(prompts.map(async (prompt, i) => {
    const res = await t.post("/v1/completions", { prompt, max_tokens: 5, stream: i % 2 === 0 });
    if (i % 2 === 0) {
      const chunks = parseSse(await res.text()).slice(0, -1).map((e) => CompletionSchema.parse(e));
      return chunks.map((c) => c.choices[0].text).join("");
    }
    return CompletionSchema.parse(await res.json()).choices[0].text;
  }));
  prompts.forEach((prompt, i) => {
    const ids = t.tokenizer.encode(prompt);
    const expected = Array.from({ length: 5 }, (_, k) => ids[k % ids.length]);
    assertEquals(results[i], t.tokenizer.decode(expected));
  });
  assertEquals(t.lifecycle.inFlight, 0);
});

Deno.test("CORS: preflight answered for allowed origins only", async () => {
  const t = await makeApp({ config: { corsOrigins: ["https://ok.example"], authToken: "tok" } });
  const preflight = (origin: string) =>
    t.app.request("/v1/chat/completions", {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
  const ok = await preflight("https://ok.example");
  assertEquals(ok.status, 204);
  assertEquals(ok.headers.get("access-control-allow-origin"), "https://ok.example");
  assert(ok.headers.get("access-control-allow-headers")?.includes("authorization"));
  const bad = await preflight("https://evil.example");
  assertEquals(bad.headers.get("access-control-allow-origin"), null);
  const none = await makeApp();
  const off = await none.app.request("/v1/models", {
    method: "OPTIONS",
    headers: { origin: "https://ok.example" },
  });
  assertEquals(off.headers.get("access-control-allow-origin"), null);
  await off.body?.cancel();
});

Deno.test("chat_template_kwargs from the server and the request reach the template", async () => {
  const template = new ChatTemplate(
    "{{ greeting }} {{ name }}{% for m in messages %}{{ m.content }}{% endfor %}",
    "test",
  );
  const t = await makeApp({
    chatTemplate: template,
    config: { chatTemplateKwargs: { greeting: "hey", name: "server" } },
  });
  await (await t.post("/v1/chat/completions", {
    messages: [{ role: "user", content: "!" }],
    chat_template_kwargs: { name: "request" },
    max_tokens: 1,
  })).json();
  assertEquals(t.tokenizer.decode(t.engine.calls[0].prompt), "hey request!");
});

Deno.test("a chat template error is the client's 400", async () => {
  const template = new ChatTemplate("{{ raise_exception('roles must alternate') }}", "test");
  const t = await makeApp({ chatTemplate: template });
  const e = await errorOf(
    await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "x" }] }),
  );
  assertEquals([e.status, e.code], [400, "chat_template_error"]);
  assert(e.message.includes("roles must alternate"));
});

Deno.test("shutdown's grace period over: running streams end with a shutting_down error event", async () => {
  const t = await makeApp({ engine: { delayMs: 5 } });
  const res = await t.post("/v1/completions", { prompt: "abc", max_tokens: 200, stream: true });
  const reader = res.body!.getReader();
  await reader.read();
  t.lifecycle.abortAll();
  let text = "";
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    text += new TextDecoder().decode(r.value);
  }
  const last = ErrorBodySchema.parse(parseSse(text).at(-1));
  assertEquals(last.error.code, "shutting_down");
  assertEquals(t.engine.calls[0].cancelled, true);

  const whole = await t.post("/v1/completions", { prompt: "abc", max_tokens: 5 });
  assertEquals((await errorOf(whole)).status, 503);
});
