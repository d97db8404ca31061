/**
 * Maps anything a handler can throw to an {@link ApiError}: engine errors by their code, template
 * errors as the client's fault, everything else as a 500 whose details stay in the log.
 *
 * @module
 */

import { ApiError } from "../api/errors.ts";
import { EngineError } from "../engine/types.ts";
import { ChatTemplateError } from "../model/chat_template.ts";

const ENGINE_STATUS: Record<EngineError["code"], number> = {
  invalid_request: 400,
  context_length_exceeded: 400,
  overloaded: 429,
  internal: 500,
};

/** The API error for `err`; `internal` tells the caller to log the original as an ERROR. */
export function toApiError(err: unknown): { error: ApiError; internal: boolean } {
  if (err instanceof ApiError) return { error: err, internal: err.status >= 500 };
  if (err instanceof EngineError) {
    const status = ENGINE_STATUS[err.code] ?? 500;
    const code = err.code === "internal" ? "engine_error" : err.code;
    return {
      error: new ApiError(
        status,
        err.message,
        status >= 500 ? "server_error" : "invalid_request_error",
        err.param ?? null,
        code,
      ),
      internal: status >= 500,
    };
  }
  if (err instanceof ChatTemplateError) {
    return { error: ApiError.invalid(err.message, "messages", "chat_template_error"), internal: false };
  }
  return {
    error: new ApiError(
      500,
      "The server had an error while processing your request.",
      "server_error",
      null,
      "internal_error",
    ),
    internal: true,
  };
}

/** The 503 of a request cut by shutdown. */
export function shuttingDown(): ApiError {
  return new ApiError(503, "The server is shutting down.", "service_unavailable", null, "shutting_down");
}
