/**
 * One choice's generation as the HTTP layer sees it: engine tokens in, text deltas out. Tokens go
 * through the incremental detokenizer (whole characters only) and the stop matcher (nothing at or
 * past a stop sequence); EOS/stop ids end the choice without showing their text. The per-token work
 * here is only string handling; the math stays in the engine.
 *
 * @module
 */

import { detokenizerFor } from "../engine/detokenizer.ts";
import { StopMatcher } from "../engine/stop_matcher.ts";
import type { FinishReason, GenerateParams, TextGenerator } from "../engine/types.ts";
import type { Tokenizer } from "../model/tokenizer.ts";

/** What to generate for one choice. */
export interface ChoiceRequest {
  promptIds: number[];
  params: GenerateParams;
  /** Stop sequences (request's plus the server's defaults). */
  stop: readonly string[];
  /** Leave special tokens out of the text (default true, as vLLM). */
  skipSpecialTokens: boolean;
  /** Aborted when the client goes away or the server stops waiting. */
  signal: AbortSignal;
}

/** A piece of text to send. */
export interface TextEvent {
  type: "text";
  text: string;
}

/** The end of a choice. */
export interface EndEvent {
  type: "end";
  finishReason: FinishReason;
  /** Tokens the engine produced, the final EOS/stop token included (OpenAI counts it). */
  completionTokens: number;
  /** Every generated id, for the INFO log. */
  tokenIds: number[];
  /** The stop sequence that ended the choice, if one did. */
  stopSequence: string | null;
}

/** Events of one choice: text pieces, then exactly one end (unless it throws or is cancelled). */
export type ChoiceEvent = TextEvent | EndEvent;

/**
 * Runs one choice. Errors of the engine (EngineError) propagate from the first `next()`. Leaving the
 * loop early (return/throw) cancels the engine sequence.
 */
export async function* generateChoice(
  generator: TextGenerator,
  tokenizer: Tokenizer,
  request: ChoiceRequest,
): AsyncGenerator<ChoiceEvent, void, undefined> {
  const { promptIds, params, stop, skipSpecialTokens, signal } = request;
  const detokenizer = detokenizerFor(tokenizer, {
    contextIds: promptIds,
    skip: skipSpecialTokens ? (id) => tokenizer.specialIds.has(id) : undefined,
  });
  const matcher = new StopMatcher(stop);
  const tokenIds: number[] = [];
  let finishReason: FinishReason = "length";

  /** What of a detokenized piece may be shown (nothing at or past a stop sequence). */
  const shown = (piece: string): string => piece === "" ? "" : matcher.push(piece).text;

  for await (const token of generator.generate(promptIds, params, signal)) {
    tokenIds.push(token.id);
    if (token.isStop) {
      finishReason = "stop";
      break;
    }
    // Not a `yield*` of a generator: that costs turns of the event loop's microtasks for every token.
    const text = shown(detokenizer.push(token.id));
    if (text !== "") yield { type: "text", text };
    if (matcher.stopped !== null) {
      finishReason = "stop";
      break;
    }
    if (token.finishReason !== null) {
      finishReason = token.finishReason;
      break;
    }
  }
  if (signal.aborted) return;
  if (matcher.stopped === null) {
    const text = shown(detokenizer.flush());
    if (text !== "") yield { type: "text", text };
    if (matcher.stopped !== null) finishReason = "stop";
    const rest = matcher.flush();
    if (rest !== "") yield { type: "text", text: rest };
  }
  yield {
    type: "end",
    finishReason,
    completionTokens: tokenIds.length,
    tokenIds,
    stopSequence: matcher.stopped,
  };
}
