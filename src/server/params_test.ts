import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import type { CompletionRequest } from "../api/openai.ts";
import type { EngineInfo } from "../engine/types.ts";
import { buildParams, checkContext, rejectNotImplemented, unknownFields } from "./params.ts";

const info: EngineInfo = {
  modelPath: "/m",
  architecture: "X",
  maxContext: 100,
  vocabSize: 50,
  eosTokenIds: [2],
  bosTokenId: null,
  defaults: { temperature: 0.6, topK: 20 },
  dtype: "f32",
};
const server = { stopSequences: ["###"], ignoreEos: false };
const req = (fields: Partial<CompletionRequest>) => ({ prompt: "x", ...fields }) as CompletionRequest;

Deno.test("request over generation_config over API defaults", () => {
  const { params } = buildParams(req({}), info, server, 10, 16);
  assertEquals([params.temperature, params.topK, params.topP, params.maxTokens], [0.6, 20, 1, 16]);
  const { params: p2 } = buildParams(req({ temperature: 0, top_k: -1 }), info, server, 10, 16);
  assertEquals([p2.temperature, p2.topK], [0, 0]);
  const bare = { ...info, defaults: {} };
  assertEquals(buildParams(req({}), bare, server, 10, 16).params.temperature, 1);
});

Deno.test("max_tokens is bounded by the rest of the context", () => {
  assertEquals(buildParams(req({ max_tokens: 500 }), info, server, 90, 16).params.maxTokens, 10);
  assertEquals(buildParams(req({}), info, server, 90, undefined).params.maxTokens, 10);
});

Deno.test("min_tokens above the request's max_tokens is a 400 naming it", () => {
  assertThrows(
    () => buildParams(req({ min_tokens: 10, max_tokens: 3 }), info, server, 1, 16),
    /'min_tokens'.*max_tokens \(3\)/,
  );
  assertEquals(buildParams(req({ min_tokens: 3, max_tokens: 3 }), info, server, 1, 16).params.minTokens, 3);
  // Against a default maximum (the server's, the model's or the context's) it is no contradiction.
  assertEquals(buildParams(req({ min_tokens: 40 }), info, server, 1, 16).params.minTokens, 40);
});

Deno.test("stop strings: server defaults plus the request's", () => {
  assertEquals(buildParams(req({ stop: "END" }), info, server, 1, 16).stop, ["###", "END"]);
  assertEquals(buildParams(req({ stop: ["a", "b"] }), info, server, 1, 16).stop, ["###", "a", "b"]);
});

Deno.test("ids are checked against the vocabulary", () => {
  assertThrows(() => buildParams(req({ stop_token_ids: [50] }), info, server, 1, 16), /stop_token_ids/);
  assertThrows(() => buildParams(req({ logit_bias: { "77": 1 } }), info, server, 1, 16), /logit_bias/);
});

Deno.test("context check names both numbers", () => {
  assertThrows(
    () => checkContext(100, 100, "prompt"),
    (e: Error) => e.message.includes("100 tokens") && e.message.includes("prompt has 100"),
  );
  checkContext(99, 100, "prompt");
});

Deno.test("not-implemented fields are refused unless set to their off value", () => {
  rejectNotImplemented({
    n: 1,
    logprobs: false,
    tools: [],
    response_format: { type: "text" },
    best_of: null,
  });
  assertThrows(() => rejectNotImplemented({ n: 3 }), /'n'/);
  assertThrows(() => rejectNotImplemented({ tool_choice: "auto" }), /'tool_choice'/);
});

Deno.test("unknown fields exclude the schema, not-implemented and no-op fields", () => {
  assertEquals(unknownFields({ prompt: 1, n: 1, user: "u", brand_new: 1 }, ["prompt"]), ["brand_new"]);
});

Deno.test("the tokenizer's EOS stops too, unless ignore_eos", () => {
  const withEos = { ...server, tokenizerEos: 7 };
  assertEquals(buildParams(req({}), info, withEos, 1, 16).params.stopTokenIds, [7]);
  assertEquals(buildParams(req({ ignore_eos: true }), info, withEos, 1, 16).params.stopTokenIds, []);
  assertEquals(buildParams(req({}), info, { ...server, tokenizerEos: 2 }, 1, 16).params.stopTokenIds, []);
});

Deno.test("min_length (seed spelling, prompt included) becomes min_tokens; min_tokens wins", () => {
  assertEquals(buildParams(req({ min_length: 25 }), info, server, 10, 16).params.minTokens, 15);
  assertEquals(buildParams(req({ min_length: 5 }), info, server, 10, 16).params.minTokens, 0);
  assertEquals(buildParams(req({ min_length: 25, min_tokens: 3 }), info, server, 10, 16).params.minTokens, 3);
});
