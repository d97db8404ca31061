/**
 * Chat templates: which one a model uses and rendering it with `@huggingface/jinja`.
 *
 * The priority is the seed server's: `--chat-template` (a file, the name of one of the tokenizer's
 * named templates, or inline Jinja) > the tokenizer's own (`chat_template.jinja`,
 * `chat_template.json` or `tokenizer_config.json`, whose named templates give "default") > a simple
 * role-prefixed fallback, so that a base model without a template can still be chatted with.
 *
 * @module
 */

import { Template } from "@huggingface/jinja";
import { join } from "node:path";
import type { ChatTemplateSource, Tokenizer } from "./tokenizer.ts";

/** One message as the template sees it (content already flattened to text). */
export interface TemplateMessage {
  role: string;
  content: string | null;
  name?: string;
  [key: string]: unknown;
}

/** Options of {@link ChatTemplate.render}. */
export interface RenderOptions {
  /** End with the assistant header so the model answers (default true). */
  addGenerationPrompt?: boolean;
  /** Extra template variables (`chat_template_kwargs`), e.g. `enable_thinking`. */
  kwargs?: Record<string, unknown>;
}

/** Used when neither the operator nor the tokenizer gives a template. */
export const FALLBACK_CHAT_TEMPLATE = "{% for message in messages %}" +
  "{% if message['role'] == 'system' %}System: {% elif message['role'] == 'user' %}User: " +
  "{% elif message['role'] == 'assistant' %}Assistant: {% else %}{{ message['role'] | capitalize }}: {% endif %}" +
  "{{ message['content'] }}\n\n{% endfor %}" +
  "{% if add_generation_prompt %}Assistant:{% endif %}";

/** A template rendering error (bad messages for this template, `raise_exception`): a client error. */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChatTemplateError";
  }
}

/** A parsed chat template bound to the model's special tokens. */
export class ChatTemplate {
  readonly #template: Template;
  readonly #tokens: Record<string, string>;

  /**
   * @param source Jinja text.
   * @param origin Where it came from, for the startup log (e.g. `tokenizer_config.json`).
   * @param specialTokens `bos_token`, `eos_token`, ... made available to the template.
   */
  constructor(readonly source: string, readonly origin: string, specialTokens: Record<string, string> = {}) {
    try {
      this.#template = new Template(source);
    } catch (err) {
      throw new Error(`chat template from ${origin} does not parse: ${(err as Error).message}`);
    }
    this.#tokens = specialTokens;
  }

  /** Renders a conversation to the prompt text. Throws {@link ChatTemplateError}. */
  render(messages: TemplateMessage[], options: RenderOptions = {}): string {
    const context: Record<string, unknown> = {
      ...this.#tokens,
      ...options.kwargs,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
    };
    try {
      return this.#template.render(context);
    } catch (err) {
      throw new ChatTemplateError(`chat template error: ${(err as Error).message}`);
    }
  }
}

/** Picks "default" from named templates (what transformers does), else the only/first one. */
function pickNamed(source: ChatTemplateSource, where: string): { text: string; origin: string } | null {
  if (typeof source === "string") return { text: source, origin: where };
  if (!Array.isArray(source) || source.length === 0) return null;
  const chosen = source.find((t) => t.name === "default") ?? source[0];
  return { text: chosen.template, origin: `${where} (template "${chosen.name}")` };
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    // NotADirectory: the model is a single file (GGUF), so it has no chat_template.jinja beside it.
    if (
      err instanceof Deno.errors.NotFound || err instanceof Deno.errors.IsADirectory ||
      err instanceof Deno.errors.NotADirectory
    ) return null;
    throw err;
  }
}

/** Where {@link resolveChatTemplate} looks. */
export interface ResolveOptions {
  /** `--chat-template`: a file, a named template of the tokenizer, or inline Jinja. */
  option?: string | null;
  modelDir: string;
  tokenizer: Tokenizer;
}

/** Chooses the chat template by the priority in the module doc. */
export async function resolveChatTemplate(
  { option, modelDir, tokenizer }: ResolveOptions,
): Promise<ChatTemplate> {
  const tokens = tokenizer.specialTokenTexts;
  if (option) {
    const fromFile = await readIfExists(option);
    if (fromFile !== null) return new ChatTemplate(fromFile, `file ${option}`, tokens);
    const own = tokenizer.chatTemplate;
    if (Array.isArray(own)) {
      const named = own.find((t) => t.name === option);
      if (named) return new ChatTemplate(named.template, `tokenizer template "${option}"`, tokens);
    }
    if (option.includes("{{") || option.includes("{%")) return new ChatTemplate(option, "inline", tokens);
    throw new Error(`--chat-template ${option}: no such file (nor a named template of the tokenizer)`);
  }
  const jinjaFile = await readIfExists(join(modelDir, "chat_template.jinja"));
  if (jinjaFile !== null) return new ChatTemplate(jinjaFile, "chat_template.jinja", tokens);
  const jsonFile = await readIfExists(join(modelDir, "chat_template.json"));
  if (jsonFile !== null) {
    const picked = pickNamed(JSON.parse(jsonFile).chat_template, "chat_template.json");
    if (picked) return new ChatTemplate(picked.text, picked.origin, tokens);
  }
  const own = tokenizer.chatTemplate;
  const picked = own === null ? null : pickNamed(own, "tokenizer_config.json");
  if (picked) return new ChatTemplate(picked.text, picked.origin, tokens);
  return new ChatTemplate(FALLBACK_CHAT_TEMPLATE, "fallback", tokens);
}

/**
 * Encodes rendered chat text without doubling BOS: templates that write `{{ bos_token }}` themselves
 * are encoded without the tokenizer's special tokens; others get them as a plain prompt would.
 */
export function encodeChatPrompt(tokenizer: Tokenizer, text: string): number[] {
  const templateHasBos = tokenizer.bosToken !== null && text.startsWith(tokenizer.bosToken);
  return tokenizer.encode(text, { addSpecialTokens: !templateHasBos });
}
