/**
 * Ids, decoded text and chat-template renderings must equal Hugging Face's Rust `tokenizers` (and
 * transformers' chat templating) on the committed multilingual corpus: emoji, CJK, whitespace runs,
 * special tokens. Goldens: test/fixtures/tokenizer/*.golden.json, made with the Python libraries.
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeChatPrompt, resolveChatTemplate } from "./chat_template.ts";
import { Tokenizer } from "./tokenizer.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const GOLDEN_DIR = join(ROOT, "test/fixtures/tokenizer");

interface Golden {
  tokenizer_dir: string;
  vocab_size: number;
  special_tokens: Record<string, number>;
  cases: { text: string; ids: number[]; decoded: string }[];
  chat_template_cases?: {
    messages: { role: string; content: string }[];
    add_generation_prompt: boolean;
    rendered: string;
    ids: number[];
  }[];
}

for (const name of ["tiny", "smollm2"]) {
  const path = join(GOLDEN_DIR, `${name}.golden.json`);
  Deno.test(`tokenizer matches Hugging Face tokenizers: ${name}`, async (t) => {
    const golden: Golden = JSON.parse(await Deno.readTextFile(path));
    const dir = join(ROOT, golden.tokenizer_dir);
    const tokenizer = await Tokenizer.load(dir);

    await t.step("vocabulary and special tokens", () => {
      assertEquals(tokenizer.vocabSize, golden.vocab_size);
      for (const [text, id] of Object.entries(golden.special_tokens)) {
        assertEquals(tokenizer.tokenToId(text), id, text);
        assertEquals(tokenizer.specialIds.has(id), true, text);
      }
    });

    await t.step(`encode: ${golden.cases.length} cases`, () => {
      for (const c of golden.cases) assertEquals(tokenizer.encode(c.text), c.ids, JSON.stringify(c.text));
    });

    await t.step("decode", () => {
      for (const c of golden.cases) assertEquals(tokenizer.decode(c.ids), c.decoded, JSON.stringify(c.text));
    });

    await t.step("chat template renders and encodes as transformers", async () => {
      const template = await resolveChatTemplate({ modelDir: dir, tokenizer });
      for (const c of golden.chat_template_cases ?? []) {
        const text = template.render(c.messages, { addGenerationPrompt: c.add_generation_prompt });
        assertEquals(text, c.rendered);
        assertEquals(encodeChatPrompt(tokenizer, text), c.ids);
      }
    });
  });
}
