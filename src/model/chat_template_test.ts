import {
  deepStrictEqual as assertEquals,
  ok as assert,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ChatTemplate,
  ChatTemplateError,
  encodeChatPrompt,
  FALLBACK_CHAT_TEMPLATE,
  resolveChatTemplate,
} from "./chat_template.ts";
import { Tokenizer } from "./tokenizer.ts";

const MODEL = fileURLToPath(new URL("../../test/fixtures/models/llama-f32", import.meta.url));
const json = JSON.parse(await Deno.readTextFile(join(MODEL, "tokenizer.json")));
const config = JSON.parse(await Deno.readTextFile(join(MODEL, "tokenizer_config.json")));
const hi = [{ role: "user", content: "hi" }];

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("priority: --chat-template file > tokenizer's own > fallback", async () => {
  await withDir(async (dir) => {
    const tokenizer = new Tokenizer(json, config);
    const file = join(dir, "custom.jinja");
    await Deno.writeTextFile(file, "CUSTOM{% for m in messages %}{{ m.content }}{% endfor %}");
    const custom = await resolveChatTemplate({ option: file, modelDir: MODEL, tokenizer });
    assertEquals(custom.render(hi), "CUSTOMhi");
    const own = await resolveChatTemplate({ modelDir: MODEL, tokenizer });
    assertEquals(own.origin, "tokenizer_config.json");
    assertEquals(own.render(hi), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    const bare = new Tokenizer(json, { ...config, chat_template: undefined });
    const fallback = await resolveChatTemplate({ modelDir: dir, tokenizer: bare });
    assertEquals([fallback.origin, fallback.source], ["fallback", FALLBACK_CHAT_TEMPLATE]);
    assertEquals(
      fallback.render([{ role: "system", content: "s" }, ...hi]),
      "System: s\n\nUser: hi\n\nAssistant:",
    );
  });
});

Deno.test("chat_template.jinja in the model directory is the tokenizer's own", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "chat_template.jinja"), "J{{ messages[0].content }}");
    const t = await resolveChatTemplate({ modelDir: dir, tokenizer: new Tokenizer(json, config) });
    assertEquals(t.render(hi), "Jhi");
  });
});

Deno.test("named templates: default chosen, others selectable by name", async () => {
  const tokenizer = new Tokenizer(json, {
    ...config,
    chat_template: [{ name: "tool_use", template: "T" }, { name: "default", template: "D" }],
  });
  assertEquals((await resolveChatTemplate({ modelDir: "/nonexistent", tokenizer })).render(hi), "D");
  assertEquals(
    (await resolveChatTemplate({ option: "tool_use", modelDir: "/nonexistent", tokenizer })).render(hi),
    "T",
  );
  await assertRejects(
    resolveChatTemplate({ option: "missing.jinja", modelDir: "/nonexistent", tokenizer }),
    /no such file/,
  );
});

Deno.test("add_generation_prompt and kwargs reach the template", () => {
  const t = new ChatTemplate("{{ x }}{% if add_generation_prompt %}GEN{% endif %}{{ bos_token }}", "test", {
    bos_token: "<s>",
  });
  assertEquals(t.render(hi, { kwargs: { x: 1 } }), "1GEN<s>");
  assertEquals(t.render(hi, { addGenerationPrompt: false }), "<s>");
});

Deno.test("template errors are ChatTemplateError; bad syntax fails at load", () => {
  const t = new ChatTemplate("{{ raise_exception('nope') }}", "test");
  assertThrows(
    () => t.render(hi),
    (e: Error) => e instanceof ChatTemplateError && e.message.includes("nope"),
  );
  assertThrows(() => new ChatTemplate("{% for %}", "bad.jinja"), /bad.jinja/);
});

Deno.test("no doubled BOS: a template that writes BOS is encoded without adding another", () => {
  const tokenizer = new Tokenizer(json, { ...config, add_bos_token: true });
  const withBos = encodeChatPrompt(tokenizer, "<|endoftext|>hi");
  assertEquals(withBos.filter((id) => id === 0).length, 1);
  const without = encodeChatPrompt(tokenizer, "hi");
  assertEquals(without[0], 0);
  assert(without.length === withBos.length);
});
