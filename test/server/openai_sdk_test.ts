/**
 * The real server process with the real engine and a fixture model, driven by the official `openai`
 * npm SDK: chat, chat stream, completions, completions stream, models, auth, error shapes. One server
 * for the whole file; each step is independent of the others' order.
 */

import { deepStrictEqual as assertEquals, ok as assert, rejects as assertRejects } from "node:assert/strict";
import OpenAI from "openai";
import { startServer } from "./process.ts";

Deno.test({
  name: "openai SDK against the real server (llama-f32)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const server = await startServer({ args: ["--served-model-name", "tiny-llama", "--log-level", "INFO"] });
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.token!, maxRetries: 0 });
    try {
      await t.step("models: list and retrieve", async () => {
        const page = await client.models.list();
        assertEquals(page.data.map((m) => m.id), ["tiny-llama"]);
        const model = await client.models.retrieve("tiny-llama");
        assertEquals([model.id, model.object, model.owned_by], ["tiny-llama", "model", "hearth"]);
        await assertRejects(
          client.models.retrieve("gpt-4"),
          (e: unknown) => e instanceof OpenAI.NotFoundError,
        );
      });

      await t.step("auth: wrong key refused, right key accepted", async () => {
        const wrong = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "0".repeat(64), maxRetries: 0 });
        await assertRejects(wrong.models.list(), (e: unknown) => {
          assert(e instanceof OpenAI.AuthenticationError);
          assertEquals([e.status, e.type, e.code], [401, "authentication_error", "invalid_api_key"]);
          return true;
        });
      });

      let greedy = "";
      await t.step("chat: greedy, usage, served name", async () => {
        const res = await client.chat.completions.create({
          model: "anything",
          messages: [{ role: "system", content: "Be brief." }, {
            role: "user",
            content: "Hello, how are you?",
          }],
          max_tokens: 12,
          temperature: 0,
        });
        assertEquals(res.object, "chat.completion");
        assertEquals(res.model, "tiny-llama");
        assertEquals(res.choices.length, 1);
        assertEquals(res.choices[0].message.role, "assistant");
        assert(["stop", "length"].includes(res.choices[0].finish_reason));
        const usage = res.usage!;
        assertEquals(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
        assert(usage.completion_tokens >= 1 && usage.completion_tokens <= 12);
        greedy = res.choices[0].message.content ?? "";
        const again = await client.chat.completions.create({
          model: "anything",
          messages: [{ role: "system", content: "Be brief." }, {
            role: "user",
            content: "Hello, how are you?",
          }],
          max_tokens: 12,
          temperature: 0,
        });
        assertEquals(again.choices[0].message.content, greedy);
      });

      await t.step("chat stream: role first, same text as whole, usage", async () => {
        const stream = await client.chat.completions.create({
          model: "anything",
          messages: [{ role: "system", content: "Be brief." }, {
            role: "user",
            content: "Hello, how are you?",
          }],
          max_tokens: 12,
          temperature: 0,
          stream: true,
          stream_options: { include_usage: true },
        });
        const chunks = [];
        for await (const chunk of stream) chunks.push(chunk);
        assertEquals(chunks[0].choices[0].delta.role, "assistant");
        const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
        assertEquals(text, greedy);
        const finish = chunks.find((c) => c.choices[0]?.finish_reason);
        assert(finish);
        const last = chunks.at(-1)!;
        assertEquals(last.choices, []);
        assertEquals(last.usage!.total_tokens, last.usage!.prompt_tokens + last.usage!.completion_tokens);
        assertEquals(new Set(chunks.map((c) => c.id)).size, 1);
      });

      await t.step("chat: seeded sampling repeats exactly (extra_body top_k)", async () => {
        const ask = () =>
          client.chat.completions.create({
            model: "m",
            messages: [{ role: "user", content: "Tell me a story" }],
            max_tokens: 10,
            temperature: 0.9,
            seed: 1234,
            // @ts-ignore: extra_body-style fields go at the top level of the body
            top_k: 40,
          });
        const [a, b] = [await ask(), await ask()];
        assertEquals(a.choices[0].message.content, b.choices[0].message.content);
      });

      let completionText = "";
      await t.step("completions: max_tokens defaults to 16; extra_body parameters", async () => {
        const res = await client.completions.create(
          { model: "m", prompt: "Once upon a time", temperature: 0, ignore_eos: true } as never,
        );
        assertEquals(res.object, "text_completion");
        assertEquals(res.usage!.completion_tokens, 16);
        assertEquals(res.choices[0].finish_reason, "length");
        completionText = res.choices[0].text;
        // What the Python SDK sends for extra_body={...}: the fields at the top level.
        const extra = await client.completions.create({
          model: "m",
          prompt: "Once upon a time",
          max_tokens: 6,
          temperature: 0.8,
          top_k: 20,
          min_p: 0.05,
          seed: 7,
          repetition_penalty: 1.2,
          no_repeat_ngram_size: 2,
        } as never);
        assertEquals(extra.usage!.prompt_tokens, res.usage!.prompt_tokens);
      });

      await t.step("completions stream: same text as whole", async () => {
        const stream = await client.completions.create({
          model: "m",
          prompt: "Once upon a time",
          max_tokens: 16,
          temperature: 0,
          stream: true,
          ignore_eos: true,
        } as never) as unknown as AsyncIterable<OpenAI.Completions.Completion>;
        let text = "";
        let finish: string | null = null;
        for await (const chunk of stream) {
          text += chunk.choices[0]?.text ?? "";
          finish = chunk.choices[0]?.finish_reason ?? finish;
        }
        assertEquals(text, completionText);
        assertEquals(finish, "length");
      });

      await t.step("completions: several prompts, token ids, echo", async () => {
        const many = await client.completions.create({
          model: "m",
          prompt: ["Hello", "Goodbye"],
          max_tokens: 3,
          temperature: 0,
        });
        assertEquals(many.choices.map((c) => c.index).sort(), [0, 1]);
        const ids = await client.completions.create({
          model: "m",
          prompt: [52, 83, 303],
          max_tokens: 3,
          temperature: 0,
        });
        assertEquals(ids.usage!.prompt_tokens, 3);
        const echo = await client.completions.create({
          model: "m",
          prompt: "Once upon a time",
          max_tokens: 4,
          temperature: 0,
          echo: true,
        });
        assert(echo.choices[0].text.startsWith("Once upon a time"));
      });

      await t.step("completions: suffix as fill-in-the-middle", async () => {
        const res = await client.completions.create({
          model: "m",
          prompt: "def add(a, b):",
          suffix: "\n",
          max_tokens: 4,
          temperature: 0,
        });
        // prompt + suffix + three FIM markers
        assert(res.usage!.prompt_tokens > 5);
      });

      await t.step("stop sequences cut the text before the match", async () => {
        const full = completionText;
        // A stop string from the middle of the known greedy text: its first occurrence is the cut.
        const chars = [...full];
        let stop: string | null = null;
        for (let i = 2; i < chars.length && stop === null; i++) {
          const prefix = chars.slice(0, i).join("");
          if (chars[i] !== "\uFFFD" && !prefix.includes(chars[i])) stop = chars[i];
        }
        assert(stop !== null, `no usable stop character in ${JSON.stringify(full)}`);
        const res = await client.completions.create({
          model: "m",
          prompt: "Once upon a time",
          max_tokens: 16,
          temperature: 0,
          stop: [stop],
          ignore_eos: true,
        } as never);
        assertEquals(res.choices[0].text, full.slice(0, full.indexOf(stop)));
        assertEquals(res.choices[0].finish_reason, "stop");
      });

      await t.step("errors: OpenAI error objects through the SDK", async () => {
        const bad = (body: Record<string, unknown>, param: string | null, code?: string) =>
          assertRejects(
            client.chat.completions.create(
              { model: "m", messages: [{ role: "user", content: "x" }], ...body } as never,
            ),
            (e: unknown) => {
              assert(e instanceof OpenAI.BadRequestError, String(e));
              assertEquals(e.param ?? null, param);
              if (code) assertEquals(e.code, code);
              return true;
            },
          );
        await bad({ temperature: 5 }, "temperature");
        await bad({ n: 2 }, "n", "unsupported_parameter");
        await bad({ response_format: { type: "json_object" } }, "response_format", "unsupported_parameter");
        await bad(
          { messages: [{ role: "user", content: "word ".repeat(300) }] },
          "messages",
          "context_length_exceeded",
        );
      });

      await t.step("concurrent requests all complete with their own answers", async () => {
        const prompts = ["Hello", "Once upon a time", "The quick brown fox", "def main():"];
        const sequential = [];
        for (const prompt of prompts) {
          sequential.push(
            (await client.completions.create({ model: "m", prompt, max_tokens: 8, temperature: 0 }))
              .choices[0].text,
          );
        }
        const parallel = await Promise.all(
          prompts.map((prompt) =>
            client.completions.create({ model: "m", prompt, max_tokens: 8, temperature: 0 })
          ),
        );
        assertEquals(parallel.map((r) => r.choices[0].text), sequential);
      });
    } finally {
      const code = await server.stop();
      assertEquals(code, 0, server.stderr.join("\n"));
    }
  },
});
