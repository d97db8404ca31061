import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { DEFAULT_GENERATE_PARAMS } from "../engine/types.ts";
import { FakeEngine } from "../../test/server/fake_engine.ts";
import { fixtureTokenizer } from "../../test/server/helpers.ts";
import { type ChoiceEvent, generateChoice } from "./generation.ts";

async function run(script: number[], opts: { stop?: string[]; maxTokens?: number; skip?: boolean } = {}) {
  const tokenizer = await fixtureTokenizer();
  const engine = new FakeEngine({ eosTokenIds: [2], script: () => script });
  const events: ChoiceEvent[] = [];
  for await (
    const e of generateChoice(engine, tokenizer, {
      promptIds: [10, 11],
      params: { ...DEFAULT_GENERATE_PARAMS, maxTokens: opts.maxTokens ?? 50 },
      stop: opts.stop ?? [],
      skipSpecialTokens: opts.skip ?? true,
      signal: new AbortController().signal,
    })
  ) events.push(e);
  const text = events.filter((e) => e.type === "text").map((e) => (e as { text: string }).text).join("");
  return { text, end: events.at(-1) as Extract<ChoiceEvent, { type: "end" }>, engine };
}

Deno.test("EOS ends the choice with stop, counted but not shown", async () => {
  const tokenizer = await fixtureTokenizer();
  const { text, end } = await run([...tokenizer.encode("ab"), 2, 70]);
  assertEquals(text, "ab");
  assertEquals([end.finishReason, end.completionTokens], ["stop", tokenizer.encode("ab").length + 1]);
});

Deno.test("length when max tokens is reached", async () => {
  const tokenizer = await fixtureTokenizer();
  const { end } = await run(tokenizer.encode("abcdefgh"), { maxTokens: 3 });
  assertEquals([end.finishReason, end.completionTokens], ["length", 3]);
});

Deno.test("a stop string ends the choice early and cancels the engine sequence", async () => {
  const tokenizer = await fixtureTokenizer();
  const { text, end, engine } = await run(tokenizer.encode("hello world, more text"), { stop: ["world"] });
  assertEquals(text, "hello ");
  assertEquals([end.finishReason, end.stopSequence], ["stop", "world"]);
  assertEquals(engine.calls[0].cancelled, true);
});

Deno.test("special tokens are skipped unless skip_special_tokens is false", async () => {
  const tokenizer = await fixtureTokenizer();
  const ids = tokenizer.encode("<|im_start|>x");
  assertEquals((await run(ids, { maxTokens: ids.length })).text, "x");
  assertEquals((await run(ids, { maxTokens: ids.length, skip: false })).text, "<|im_start|>x");
});
