import { assertEquals, assertRejects, assertStringIncludes } from "../../../test/assert.ts";
import { completionChunks, errorResponse, fakeFetch, sseResponse } from "../../../test/client/fake_fetch.ts";
import { ApiClient } from "./api.ts";
import { HttpError } from "./errors.ts";
import { streamGeneration, usageLine } from "./generate.ts";
import { memoryOutput } from "./output.ts";

Deno.test("text is written as it streams, after the prefix", async () => {
  const fake = fakeFetch(() => sseResponse(completionChunks([" upon", " a time"])));
  const api = new ApiClient({ baseUrl: "http://h/v1", token: null, fetch: fake.fetch });
  const out = memoryOutput();
  const result = await streamGeneration(api, "completion", { prompt: "Once" }, out, { prefix: "Once" });
  assertEquals(out.stdout, "Once upon a time");
  assertEquals([result.text, result.finishReason, result.model], [" upon a time", "stop", "tiny"]);
});

Deno.test("a refused request prints no prefix", async () => {
  const fake = fakeFetch(() => errorResponse(400, "nope"));
  const api = new ApiClient({ baseUrl: "http://h/v1", token: null, fetch: fake.fetch });
  const out = memoryOutput();
  await assertRejects(() => streamGeneration(api, "completion", {}, out, { prefix: "Once" }), HttpError);
  assertEquals(out.stdout, "");
});

Deno.test("the usage line", () => {
  const line = usageLine({
    text: "",
    finishReason: "length",
    usage: { prompt_tokens: 4, completion_tokens: 8, total_tokens: 12 },
    seconds: 2,
  });
  assertEquals(
    line,
    "usage: prompt_tokens=4, completion_tokens=8, total_tokens=12, finish_reason=length, 2.00s, 4.0 tok/s",
  );
  assertStringIncludes(usageLine({ text: "", seconds: 1 }), "the server sent no usage");
});
