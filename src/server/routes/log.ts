/**
 * The seed server's per-request INFO lines: parameters on arrival; generated ids and text (with
 * special tokens, then clean) and usage at the end.
 *
 * @module
 */

import type { ChatCompletionRequest, CompletionRequest } from "../../api/openai.ts";
import type { Tokenizer } from "../../model/tokenizer.ts";
import type { ChoiceOutcome } from "../choices.ts";
import type { Logger } from "../logger.ts";
import type { RequestParams } from "../params.ts";

/** Logs the request's parameters as the engine will use them. */
export function logRequestStart(
  log: Logger,
  kind: string,
  req: ChatCompletionRequest | CompletionRequest,
  request: RequestParams,
  extra: Record<string, unknown>,
): void {
  if (!log.enabled("INFO")) return;
  const p = request.params;
  const parts = [
    `model=${req.model ?? "(none)"}`,
    `max_tokens=${p.maxTokens}`,
    `temperature=${p.temperature}`,
    `top_p=${p.topP}`,
    `top_k=${p.topK}`,
    `min_p=${p.minP}`,
    ...(p.seed !== undefined ? [`seed=${p.seed}`] : []),
    ...(p.repetitionPenalty !== 1 ? [`repetition_penalty=${p.repetitionPenalty}`] : []),
    ...(request.stop.length > 0 ? [`stop=${JSON.stringify(request.stop)}`] : []),
    ...(p.ignoreEos ? ["ignore_eos=true"] : []),
    `stream=${req.stream === true}`,
    ...Object.entries(extra).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`),
  ];
  log.info(`New ${kind} request: ${parts.join(", ")}`);
}

/** Logs what one choice generated. */
export function logOutcome(
  log: Logger,
  tokenizer: Tokenizer,
  outcome: ChoiceOutcome,
  startedMs: number,
): void {
  if (!log.enabled("INFO")) return;
  const seconds = (performance.now() - startedMs) / 1000;
  const prefix = outcome.index > 0 ? `[choice ${outcome.index}] ` : "";
  log.info(`${prefix}Generated token IDs: ${JSON.stringify(outcome.tokenIds)}`);
  log.info(
    `${prefix}Generated tokens with special tokens: ${JSON.stringify(tokenizer.decode(outcome.tokenIds))}`,
  );
  log.info(`${prefix}Response text (clean): ${JSON.stringify(outcome.text)}`);
  log.info(
    `${prefix}Usage: prompt_tokens=${outcome.promptTokens}, completion_tokens=${outcome.completionTokens}, ` +
      `finish_reason=${outcome.finishReason}, ${seconds.toFixed(3)}s, ` +
      `${(outcome.completionTokens / Math.max(seconds, 1e-9)).toFixed(1)} tok/s`,
  );
}
