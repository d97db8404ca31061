import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ModelConfigError } from "./errors.ts";
import { compatTokenizerJson, Tokenizer } from "./tokenizer.ts";

const MODEL = fileURLToPath(new URL("../../test/fixtures/models/llama-f32", import.meta.url));
const json = JSON.parse(await Deno.readTextFile(join(MODEL, "tokenizer.json")));
const config = JSON.parse(await Deno.readTextFile(join(MODEL, "tokenizer_config.json")));

Deno.test("special tokens and FIM tokens from the fixture", async () => {
  const t = await Tokenizer.load(MODEL);
  assertEquals([t.bosToken, t.bosTokenId, t.eosToken, t.eosTokenId], ["<|endoftext|>", 0, "<|im_end|>", 2]);
  assertEquals(t.fim, { prefix: 3, suffix: 5, middle: 4 });
  assertEquals(t.addsBos, false);
  assertEquals(t.specialIds.has(1), true);
});

Deno.test("add_bos_token: true puts BOS first once; false leaves it out", () => {
  const withBos = new Tokenizer(json, { ...config, add_bos_token: true });
  const ids = withBos.encode("hi");
  assertEquals(ids[0], 0);
  assertEquals(ids.slice(1), new Tokenizer(json, config).encode("hi"));
  assertEquals(withBos.encode("hi", { addSpecialTokens: false })[0] === 0, false);
  assertEquals(withBos.encode("<|endoftext|>hi"), ids);
});

Deno.test("decode: special tokens kept or skipped, empty input", () => {
  const t = new Tokenizer(json, config);
  const ids = t.encode("<|im_start|>hi<|im_end|>");
  assertEquals(t.decode(ids), "<|im_start|>hi<|im_end|>");
  assertEquals(t.decode(ids, { skipSpecialTokens: true }), "hi");
  assertEquals(t.decode([]), "");
});

Deno.test("tokenizer_config.json tokens may be AddedToken objects", () => {
  const t = new Tokenizer(json, { ...config, eos_token: { content: "<|im_end|>", __type: "AddedToken" } });
  assertEquals(t.eosTokenId, 2);
});

Deno.test("compatTokenizerJson rewrites Digits to a Unicode-aware Split, nested too", () => {
  const out = compatTokenizerJson({
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [{ type: "Digits", individual_digits: true }, { type: "ByteLevel" }],
    },
  });
  const seq = out.pre_tokenizer as { pretokenizers: Record<string, unknown>[] };
  assertEquals(seq.pretokenizers[0].type, "Split");
  assertEquals(seq.pretokenizers[1], { type: "ByteLevel" });
});

Deno.test("a damaged tokenizer directory: errors name the file, whatever the library threw", async () => {
  const cases: [string, string | null, string][] = [
    ["no tokenizer.json", null, "has no tokenizer.json"],
    ["not JSON", '{"model": ', "tokenizer.json: Unexpected end of JSON input"],
    ["merges not a list", JSON.stringify({ ...json, model: { ...json.model, merges: "x" } }), "cannot build"],
    ["added_tokens not a list", JSON.stringify({ ...json, added_tokens: 5 }), "cannot build"],
    ["an unknown pre-tokenizer", JSON.stringify({ ...json, pre_tokenizer: { type: "Foo" } }), "Foo"],
    // The library builds these without a word, into a tokenizer of the wrong vocabulary.
    ["vocab not an object", JSON.stringify({ ...json, model: { ...json.model, vocab: 5 } }), "model.vocab"],
    ["an unknown model type", JSON.stringify({ ...json, model: { ...json.model, type: "Foo" } }), "Foo"],
  ];
  for (const [what, text, part] of cases) {
    const dir = await Deno.makeTempDir();
    if (text !== null) await Deno.writeTextFile(join(dir, "tokenizer.json"), text);
    await rejects(Tokenizer.load(dir), (e: unknown) => {
      assertEquals([what, e instanceof ModelConfigError], [what, true]);
      const message = (e as Error).message;
      assertEquals([what, message.includes(dir), message.includes(part)], [what, true, true], message);
      return true;
    });
    await Deno.remove(dir, { recursive: true });
  }
});
