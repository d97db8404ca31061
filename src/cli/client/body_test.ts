import { assertEquals } from "../../../test/assert.ts";
import { chatBody, completionBody, turnMessages } from "./body.ts";
import { resolveOptions } from "./options.ts";

Deno.test("only given fields are sent; extras at the top level under their body names", () => {
  const plain = completionBody(resolveOptions({}, {}), undefined, "Once");
  assertEquals(plain, { max_tokens: 512, temperature: 0.7, prompt: "Once" });

  const o = resolveOptions({}, {
    "top-p": 0.9,
    stop: ["\n", "END"],
    "repetition-penalty": 1.2,
    "no-repeat-ngram-size": 3,
    "top-k": 40,
    "num-beams": 2,
    "min-length": 4,
    seed: 42,
    "ignore-eos": true,
    "show-usage": true,
  });
  assertEquals(completionBody(o, "m", "p"), {
    model: "m",
    max_tokens: 512,
    temperature: 0.7,
    top_p: 0.9,
    stop: ["\n", "END"],
    repetition_penalty: 1.2,
    no_repeat_ngram_size: 3,
    top_k: 40,
    num_beams: 2,
    min_length: 4,
    seed: 42,
    ignore_eos: true,
    stream_options: { include_usage: true },
    prompt: "p",
  });
});

Deno.test("chat turns: system prompt, history, then the user message", () => {
  const history = [{ role: "user" as const, content: "a" }, { role: "assistant" as const, content: "b" }];
  assertEquals(turnMessages("Be brief.", history, "c"), [
    { role: "system", content: "Be brief." },
    ...history,
    { role: "user", content: "c" },
  ]);
  assertEquals(turnMessages(undefined, [], "hi"), [{ role: "user", content: "hi" }]);
  assertEquals(turnMessages("", [], "hi"), [{ role: "user", content: "hi" }]);
  const body = chatBody(resolveOptions({}, { temperature: 0 }), "m", turnMessages(undefined, [], "hi"));
  assertEquals(body.messages, [{ role: "user", content: "hi" }]);
  assertEquals(body.temperature, 0);
});
