/**
 * Server-sent events the way OpenAI streams: each object as a `data: {json}` event, then
 * `data: [DONE]`. The stream is pulled, so generation runs only as fast as the client reads; a client
 * that goes away cancels the stream, which ends the source (and with it the engine sequence). An
 * error after the first event can no longer change the HTTP status, so it is sent as a final
 * `data: {"error": {...}}` event instead of cutting the stream silently.
 *
 * @module
 */

import type { ErrorBody } from "../api/openai.ts";
import type { Run } from "./choices.ts";
import { toApiError } from "./errors.ts";
import type { Logger } from "./logger.ts";

const encoder = new TextEncoder();

/** Options of {@link sseResponse}. */
export interface SseOptions {
  /** Turns an error thrown by the source into the final error event. */
  errorBody: (err: unknown) => ErrorBody;
  /** Called once when the client cancels the stream (disconnect). */
  onCancel?: () => void;
  /** Called once when the stream ends for any reason (done, error, cancel). */
  onClose?: () => void;
  headers?: Record<string, string>;
}

/** Encodes one SSE `data:` event. */
export function sseEvent(data: unknown): Uint8Array {
  return encoder.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
}

/**
 * The JSON of a chunk whose only changing part is one string (a token's text): the rest is serialized
 * once, and each chunk escapes only its text. The same bytes as `JSON.stringify` of the whole chunk,
 * which in the server ran between two decode steps for every token and cost about 20 µs more there
 * (cold caches after the step). `shape` builds the chunk around the string it is given.
 */
export class JsonTemplate {
  readonly #head: string;
  readonly #tail: string;

  constructor(shape: (text: string) => unknown) {
    const mark = "\u0000text\u0000";
    const json = JSON.stringify(shape(mark));
    const quoted = JSON.stringify(mark);
    const at = json.indexOf(quoted);
    if (at < 0 || json.indexOf(quoted, at + 1) >= 0) {
      throw new Error("a JSON template needs its text exactly once");
    }
    this.#head = json.slice(0, at);
    this.#tail = json.slice(at + quoted.length);
  }

  /** The chunk's JSON with `text` in it. */
  fill(text: string): string {
    return this.#head + JSON.stringify(text) + this.#tail;
  }
}

/** A `text/event-stream` response streaming `source`'s objects (strings are sent as they are: JSON). */
export function sseResponse(source: AsyncIterator<unknown>, options: SseOptions): Response {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    options.onClose?.();
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await source.next();
        if (next.done) {
          controller.enqueue(sseEvent("[DONE]"));
          controller.close();
          close();
        } else {
          controller.enqueue(sseEvent(next.value));
        }
      } catch (err) {
        if (closed) return;
        controller.enqueue(sseEvent(options.errorBody(err)));
        controller.close();
        close();
      }
    },
    async cancel() {
      if (closed) return;
      options.onCancel?.();
      close();
      // Ends the source's loops (and their engine sequences); errors here have nobody to go to.
      await source.return?.(undefined).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "connection": "keep-alive",
      "x-accel-buffering": "no",
      ...options.headers,
    },
  });
}

/** What {@link generationStream} needs of a route's generation. */
export interface GenerationStreamParts {
  requestId: string;
  log: Logger;
  /** The route's run: cancelled when the client goes away, finished when the stream ends. */
  run: Run;
  /** The route's event iterator, ended when the stream closes. */
  events: AsyncIterator<unknown>;
}

/**
 * The SSE response of a generation route (chat and completions alike): errors mid-stream become a
 * final error event (logged when they are the server's fault), a disconnect cancels the run.
 */
export function generationStream(source: AsyncIterator<unknown>, parts: GenerationStreamParts): Response {
  const { log, run, events } = parts;
  return sseResponse(source, {
    headers: { "x-request-id": parts.requestId },
    errorBody: (err) => {
      const { error, internal } = toApiError(err);
      if (internal) log.error("generation failed mid-stream", { err });
      return error.toBody();
    },
    onCancel: () => {
      log.info("client disconnected; generation cancelled");
      run.cancel();
    },
    onClose: () => {
      run.finish();
      void events.return?.(undefined).catch(() => {});
    },
  });
}
