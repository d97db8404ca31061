/**
 * `POST /v1/chat/completions`: messages through the chat template, then one choice, whole or
 * streamed as `chat.completion.chunk` events (role first, content deltas, finish reason, optional
 * usage, `[DONE]`).
 *
 * @module
 */

import type { Context } from "hono";
import { ApiError } from "../../api/errors.ts";
import {
  type ChatCompletion,
  type ChatCompletionChunk,
  ChatCompletionRequestSchema,
  type ChatMessage,
  type Usage,
} from "../../api/openai.ts";
import { encodeChatPrompt, type TemplateMessage } from "../../model/chat_template.ts";
import { Run } from "../choices.ts";
import type { AppDeps, AppEnv } from "../context.ts";
import { shuttingDown } from "../errors.ts";
import type { Lifecycle } from "../lifecycle.ts";
import { buildParams, checkContext } from "../params.ts";
import { readGenerationRequest } from "../request.ts";
import { generationStream, JsonTemplate } from "../sse.ts";
import { logOutcome, logRequestStart } from "./log.ts";

/** Flattens multi-part content to text; parts other than text are refused (no vision yet). */
export function toTemplateMessages(messages: ChatMessage[]): TemplateMessage[] {
  return messages.map((message, i) => {
    const { content, ...rest } = message;
    if (content === undefined || content === null || typeof content === "string") {
      return { ...rest, content: content ?? null } as TemplateMessage;
    }
    const texts = content.map((part, j) => {
      if (part.type !== "text" || typeof part.text !== "string") {
        const param = `messages[${i}].content[${j}].type`;
        throw ApiError.invalid(
          `Invalid value for '${param}': content parts of type '${part.type}' are not supported (only 'text')`,
          param,
          "unsupported_content",
        );
      }
      return part.text;
    });
    return { ...rest, content: texts.join("") } as TemplateMessage;
  });
}

/** Handles one chat completion request. */
export async function chatCompletions(
  c: Context<AppEnv>,
  deps: AppDeps,
  lifecycle: Lifecycle,
): Promise<Response> {
  const log = c.get("log");
  const req = await readGenerationRequest(c, ChatCompletionRequestSchema);

  const { generator, tokenizer, chatTemplate, config } = deps;
  const messages = toTemplateMessages(req.messages);
  const promptText = chatTemplate.render(messages, {
    addGenerationPrompt: req.add_generation_prompt ?? true,
    kwargs: { ...config.chatTemplateKwargs, ...req.chat_template_kwargs },
  });
  const promptIds = encodeChatPrompt(tokenizer, promptText);
  if (promptIds.length === 0) {
    throw ApiError.invalid("The chat template produced an empty prompt.", "messages");
  }
  checkContext(promptIds.length, generator.info.maxContext, "messages");
  const request = buildParams(
    req,
    generator.info,
    { ...config, tokenizerEos: tokenizer.eosTokenId },
    promptIds.length,
    undefined,
  );

  logRequestStart(log, "chat completion", req, request, { messages: messages.length });
  if (log.enabled("INFO")) {
    messages.forEach((m, i) =>
      log.info(`Message ${i}: role=${m.role}, content=${JSON.stringify(m.content)}`)
    );
    log.info(`Formatted prompt: ${JSON.stringify(promptText)}`);
    log.info(`Input token IDs: ${JSON.stringify(promptIds)}`);
  }

  const id = `chatcmpl-${c.get("requestId")}`;
  const created = Math.floor(Date.now() / 1000);
  const model = config.servedModelName;
  const run = new Run(deps, c, lifecycle);
  const choices = [{ index: 0, promptIds, request }];
  const started = performance.now();

  if (!req.stream) {
    try {
      const [outcome] = await run.collect(choices);
      logOutcome(log, tokenizer, outcome, started);
      const usage: Usage = {
        prompt_tokens: outcome.promptTokens,
        completion_tokens: outcome.completionTokens,
        total_tokens: outcome.promptTokens + outcome.completionTokens,
      };
      const response: ChatCompletion = {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{
          index: 0,
          message: { role: "assistant", content: outcome.text, refusal: null },
          logprobs: null,
          finish_reason: outcome.finishReason,
        }],
        usage,
        system_fingerprint: null,
      };
      return c.json(response);
    } finally {
      run.finish();
    }
  }

  const includeUsage = req.stream_options?.include_usage === true;
  const chunk = (
    delta: ChatCompletionChunk["choices"][0]["delta"],
    finish: ChatCompletionChunk["choices"][0]["finish_reason"],
  ) => {
    const out: ChatCompletionChunk = {
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      system_fingerprint: null,
    };
    if (includeUsage) out.usage = null;
    return out;
  };

  const { events, first } = await run.startStream(choices);
  const text: string[] = [];
  const contentChunk = new JsonTemplate((content) => chunk({ content }, null));
  const stream = async function* () {
    yield chunk({ role: "assistant", content: "" }, null);
    let next = first;
    while (!next.done) {
      const { event } = next.value;
      if (event.type === "text") {
        text.push(event.text);
        yield contentChunk.fill(event.text);
      } else {
        yield chunk({}, event.finishReason);
        logOutcome(log, tokenizer, {
          index: 0,
          text: text.join(""),
          finishReason: event.finishReason,
          promptTokens: promptIds.length,
          completionTokens: event.completionTokens,
          tokenIds: event.tokenIds,
        }, started);
        if (includeUsage) {
          const usage: Usage = {
            prompt_tokens: promptIds.length,
            completion_tokens: event.completionTokens,
            total_tokens: promptIds.length + event.completionTokens,
          };
          yield {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            choices: [],
            usage,
            system_fingerprint: null,
          };
        }
        return;
      }
      next = await events.next();
    }
    if (run.cutByShutdown) throw shuttingDown();
  };
  const source = stream();
  return generationStream(source, { requestId: c.get("requestId"), log, run, events });
}
