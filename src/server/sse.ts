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

/** A `text/event-stream` response streaming `source`'s objects. */
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
