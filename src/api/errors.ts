/**
 * Errors as the OpenAI API reports them. Handlers throw {@link ApiError}; the app's error handler
 * turns it into the status and `{"error": {...}}` body, and the stream writer into a final SSE event.
 *
 * @module
 */

import type { z } from "zod";
import type { ErrorBody } from "./openai.ts";

/** The `type` values OpenAI uses. */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "not_found_error"
  | "server_error"
  | "service_unavailable";

/** An error with everything needed to answer it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = status >= 500 ? "server_error" : "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The JSON body. */
  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  /** 400 for a bad field, naming it. */
  static invalid(message: string, param: string | null = null, code: string | null = null): ApiError {
    return new ApiError(400, message, "invalid_request_error", param, code);
  }

  /** 400 for a parameter the server knows but does not implement yet. */
  static notImplemented(param: string): ApiError {
    return new ApiError(
      400,
      `'${param}' is not supported by this server yet`,
      "invalid_request_error",
      param,
      "unsupported_parameter",
    );
  }
}

/** Formats a zod issue path as the OpenAI `param`: `messages[0].content`. */
export function paramPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** The value at `path` in `input`, undefined where the path leaves it. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * A 400 naming the first field zod rejected (the one a client fixes first), in `input`, the value that
 * was parsed: a field absent from it is missing, whatever the rule that failed (a union's, too).
 */
export function fromZodError(error: z.ZodError, input: unknown): ApiError {
  const issue = error.issues[0];
  const param = paramPath(issue.path);
  if (param === "") return ApiError.invalid(`Invalid request body: ${issue.message}`);
  const missing = valueAt(input, issue.path) === undefined;
  const message = missing
    ? `Missing required parameter: '${param}'`
    : `Invalid value for '${param}': ${issue.message}`;
  return ApiError.invalid(message, param, missing ? "missing_required_parameter" : "invalid_value");
}
