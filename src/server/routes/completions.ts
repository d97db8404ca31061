/**
 * `POST /v1/completions`: raw prompts (text, texts, token ids, lists of token ids), one choice per
 * prompt with its `index`; `echo`; `suffix` as fill-in-the-middle when the tokenizer has FIM tokens;
 * `max_tokens` 16 by default, as the API reference says.
 *
 * @module
 */

import type { Context } from "hono";
import { ApiError } from "../../api/errors.ts";
import {
  type Completion,
  type CompletionRequest,
  CompletionRequestSchema,
  type Usage,
} from "../../api/openai.ts";
import type { Tokenizer } from "../../model/tokenizer.ts";
import { type PreparedChoice, Run } from "../choices.ts";
import type { AppDeps, AppEnv } from "../context.ts";
import { shuttingDown } from "../errors.ts";
import type { Lifecycle } from "../lifecycle.ts";
import { buildParams, checkContext, checkIds } from "../params.ts";
import { readGenerationRequest } from "../request.ts";
import { generationStream, JsonTemplate } from "../sse.ts";
import { logOutcome, logRequestStart } from "./log.ts";

/** The API reference's default of max_tokens for completions. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

/** One prompt of a request: text or token ids. */
export type PromptInput = { text: string } | { ids: number[] };

/** Splits the `prompt` field into its prompts. */
export function promptInputs(prompt: CompletionRequest["prompt"]): PromptInput[] {
  if (typeof prompt === "string") return [{ text: prompt }];
  if (prompt.every((p) => typeof p === "string")) return (prompt as string[]).map((text) => ({ text }));
  if (prompt.every((p) => typeof p === "number")) return [{ ids: prompt as number[] }];
  return (prompt as number[][]).map((ids) => ({ ids }));
}

/**
 * Prompt ids of one input. With a suffix, the prefix-suffix-middle layout of FIM models:
 * `[BOS] <fim_prefix> prompt <fim_suffix> suffix <fim_middle>`, then the model writes the middle.
 */
export function promptIds(
  tokenizer: Tokenizer,
  input: PromptInput,
  suffix: string | null | undefined,
): number[] {
  if (suffix === null || suffix === undefined) {
    return "text" in input ? tokenizer.encode(input.text) : [...input.ids];
  }
  const fim = tokenizer.fim;
  if (!fim) {
    throw ApiError.invalid(
      "'suffix' needs a model whose tokenizer has fill-in-the-middle tokens, and this one has none",
      "suffix",
      "unsupported_parameter",
    );
  }
  const prefix = "text" in input ? tokenizer.encode(input.text, { addSpecialTokens: false }) : input.ids;
  const bos = tokenizer.addsBos && tokenizer.bosTokenId !== null ? [tokenizer.bosTokenId] : [];
  return [
    ...bos,
    fim.prefix,
    ...prefix,
    fim.suffix,
    ...tokenizer.encode(suffix, { addSpecialTokens: false }),
    fim.middle,
  ];
}

/** Handles one completions request. */
export async function completions(
  c: Context<AppEnv>,
  deps: AppDeps,
  lifecycle: Lifecycle,
): Promise<Response> {
  const log = c.get("log");
  const req = await readGenerationRequest(c, CompletionRequestSchema);

  const { generator, tokenizer, config } = deps;
  const inputs = promptInputs(req.prompt);
  const choices: PreparedChoice[] = [];
  const echoes: string[] = [];
  inputs.forEach((input, index) => {
    const param = inputs.length > 1 ? `prompt[${index}]` : "prompt";
    if ("ids" in input) checkIds(input.ids, generator.info.vocabSize, param);
    const ids = promptIds(tokenizer, input, req.suffix);
    if (ids.length === 0) throw ApiError.invalid("The prompt is empty.", param, "empty_prompt");
    checkContext(ids.length, generator.info.maxContext, param);
    const request = buildParams(
      req,
      generator.info,
      { ...config, tokenizerEos: tokenizer.eosTokenId },
      ids.length,
      COMPLETIONS_DEFAULT_MAX_TOKENS,
    );
    choices.push({ index, promptIds: ids, request });
    if (req.echo) {
      echoes.push(
        "text" in input
          ? input.text
          : tokenizer.decode(input.ids, { skipSpecialTokens: request.skipSpecialTokens }),
      );
    }
  });

  logRequestStart(log, "completion", req, choices[0].request, {
    prompts: inputs.length,
    ...(req.echo ? { echo: true } : {}),
    ...(req.suffix ? { suffix: req.suffix } : {}),
  });
  if (log.enabled("INFO")) {
    inputs.forEach((input, i) => {
      const prefix = inputs.length > 1 ? `[choice ${i}] ` : "";
      if ("text" in input) log.info(`${prefix}Prompt: ${JSON.stringify(input.text)}`);
      log.info(`${prefix}Input token IDs: ${JSON.stringify(choices[i].promptIds)}`);
    });
  }

  const id = `cmpl-${c.get("requestId")}`;
  const created = Math.floor(Date.now() / 1000);
  const model = config.servedModelName;
  const run = new Run(deps, c, lifecycle);
  const started = performance.now();

  if (!req.stream) {
    try {
      const outcomes = await run.collect(choices);
      outcomes.forEach((o) => logOutcome(log, tokenizer, o, started));
      const promptTokens = outcomes.reduce((n, o) => n + o.promptTokens, 0);
      const completionTokens = outcomes.reduce((n, o) => n + o.completionTokens, 0);
      const response: Completion = {
        id,
        object: "text_completion",
        created,
        model,
        choices: outcomes.map((o) => ({
          index: o.index,
          text: (req.echo ? echoes[o.index] : "") + o.text,
          logprobs: null,
          finish_reason: o.finishReason,
        })),
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
        system_fingerprint: null,
      };
      return c.json(response);
    } finally {
      run.finish();
    }
  }

  const includeUsage = req.stream_options?.include_usage === true;
  const chunk = (index: number, text: string, finish: "stop" | "length" | null): Completion => {
    const out: Completion = {
      id,
      object: "text_completion",
      created,
      model,
      choices: [{ index, text, logprobs: null, finish_reason: finish }],
      system_fingerprint: null,
    };
    if (includeUsage) out.usage = null;
    return out;
  };

  const { events, first } = await run.startStream(choices);
  const texts = choices.map(() => [] as string[]);
  const textChunks = choices.map((choice) => new JsonTemplate((text) => chunk(choice.index, text, null)));
  const stream = async function* () {
    if (req.echo) { for (const choice of choices) yield chunk(choice.index, echoes[choice.index], null); }
    let promptTokens = 0;
    let completionTokens = 0;
    let ended = 0;
    let next = first;
    while (!next.done) {
      const { index, event } = next.value;
      if (event.type === "text") {
        texts[index].push(event.text);
        yield textChunks[index].fill(event.text);
      } else {
        ended++;
        promptTokens += choices[index].promptIds.length;
        completionTokens += event.completionTokens;
        yield chunk(index, "", event.finishReason);
        logOutcome(log, tokenizer, {
          index,
          text: texts[index].join(""),
          finishReason: event.finishReason,
          promptTokens: choices[index].promptIds.length,
          completionTokens: event.completionTokens,
          tokenIds: event.tokenIds,
        }, started);
      }
      next = await events.next();
    }
    if (run.cutByShutdown) throw shuttingDown();
    if (ended < choices.length) return;
    if (includeUsage) {
      const usage: Usage = {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      };
      yield { id, object: "text_completion", created, model, choices: [], usage, system_fingerprint: null };
    }
  };
  return generationStream(stream(), { requestId: c.get("requestId"), log, run, events });
}
