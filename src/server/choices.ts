/**
 * Running the choices of one request (one per prompt) for both endpoints: side by side, cancelled
 * together when the client leaves or shutdown's grace period ends, counted for graceful shutdown,
 * either collected into whole texts or interleaved into one event stream.
 *
 * @module
 */

import type { Context } from "hono";
import { ApiError } from "../api/errors.ts";
import type { FinishReason } from "../engine/types.ts";
import type { AppDeps, AppEnv } from "./context.ts";
import { shuttingDown } from "./errors.ts";
import { type ChoiceEvent, generateChoice } from "./generation.ts";
import type { Lifecycle } from "./lifecycle.ts";
import type { Logger } from "./logger.ts";
import { mergeAsync } from "./merge.ts";
import type { RequestParams } from "./params.ts";

/** One choice, ready to run. */
export interface PreparedChoice {
  index: number;
  promptIds: number[];
  request: RequestParams;
}

/** A finished choice. */
export interface ChoiceOutcome {
  index: number;
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  tokenIds: number[];
}

/** A choice's event, tagged with its index. */
export interface IndexedEvent {
  index: number;
  event: ChoiceEvent;
}

/** The cancellation and bookkeeping of one request's generations. */
export class Run {
  readonly #controller = new AbortController();
  readonly signal: AbortSignal;
  readonly #end: () => void;
  readonly #shutdown: AbortSignal;
  readonly #log: Logger;

  constructor(readonly deps: AppDeps, c: Context<AppEnv>, lifecycle: Lifecycle) {
    this.#shutdown = lifecycle.shutdownSignal;
    this.#log = c.get("log");
    // Deno aborts the request's signal when the client disconnects.
    this.signal = AbortSignal.any([this.#controller.signal, c.req.raw.signal, this.#shutdown]);
    this.#end = lifecycle.begin();
  }

  /** Cancels every choice (idempotent). */
  cancel(): void {
    this.#controller.abort();
  }

  /** Marks the generations as over for graceful shutdown (idempotent). */
  finish(): void {
    this.#end();
  }

  /** True when shutdown, not the client, ended the run. */
  get cutByShutdown(): boolean {
    return this.#shutdown.aborted;
  }

  /** The events of all choices, interleaved as they come. */
  events(choices: PreparedChoice[]): AsyncGenerator<IndexedEvent> {
    const { generator, tokenizer } = this.deps;
    const signal = this.signal;
    const tag = async function* (choice: PreparedChoice): AsyncGenerator<IndexedEvent> {
      const events = generateChoice(generator, tokenizer, {
        promptIds: choice.promptIds,
        params: choice.request.params,
        stop: choice.request.stop,
        skipSpecialTokens: choice.request.skipSpecialTokens,
        signal,
      });
      for await (const event of events) yield { index: choice.index, event };
    };
    return choices.length === 1 ? tag(choices[0]) : mergeAsync(choices.map(tag));
  }

  /**
   * The events of all choices for a stream, with the first one already awaited: errors at the start of a
   * generation (bad parameters, capacity) are thrown here, while the response can still get its proper
   * status instead of a 200 stream.
   */
  async startStream(
    choices: PreparedChoice[],
  ): Promise<{ events: AsyncGenerator<IndexedEvent>; first: IteratorResult<IndexedEvent> }> {
    const events = this.events(choices);
    try {
      return { events, first: await events.next() };
    } catch (err) {
      this.finish();
      throw err;
    }
  }

  /** Runs every choice to its end and returns whole texts, in index order. */
  async collect(choices: PreparedChoice[]): Promise<ChoiceOutcome[]> {
    const texts = new Map<number, string[]>();
    const outcomes: ChoiceOutcome[] = [];
    const prompts = new Map(choices.map((c) => [c.index, c.promptIds.length]));
    for await (const { index, event } of this.events(choices)) {
      if (event.type === "text") {
        const parts = texts.get(index) ?? [];
        parts.push(event.text);
        texts.set(index, parts);
      } else {
        outcomes.push({
          index,
          text: (texts.get(index) ?? []).join(""),
          finishReason: event.finishReason,
          promptTokens: prompts.get(index) ?? 0,
          completionTokens: event.completionTokens,
          tokenIds: event.tokenIds,
        });
      }
    }
    if (this.cutByShutdown) throw shuttingDown();
    if (outcomes.length < choices.length) {
      // Only a disconnect ends choices without an end event; nobody will read this answer.
      this.#log.info("client disconnected; generation cancelled");
      throw ApiError.invalid("The request was cancelled.", null, "cancelled");
    }
    return outcomes.sort((a, b) => a.index - b.index);
  }
}
