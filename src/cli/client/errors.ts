/**
 * The client's errors: each carries the one line printed before a non-zero exit. Network failures are
 * boiled down from Deno's long fetch messages ("error sending request for url (...): client error
 * (Connect): tcp connect error: Connection refused (os error 111)") to their last clause.
 *
 * @module
 */

/** A failure reported as one line (`hearth client: <message>`) and exit code 1. */
export class ClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClientError";
  }
}

/** An error response of the server: HTTP status and the server's own message. */
export class HttpError extends ClientError {
  constructor(readonly status: number, readonly serverMessage: string, readonly url: string, hint = "") {
    super(`HTTP ${status} from ${url}: ${serverMessage}${hint ? ` (${hint})` : ""}`);
    this.name = "HttpError";
  }
}

/** The last clause of a fetch error's message chain, e.g. "connection refused". */
export function fetchFailureReason(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error && cause.message) message = cause.message;
  const last = message.split(": ").at(-1)!.replace(/\s*\(os error \d+\)\s*$/, "").trim();
  return last.length > 0 ? last[0].toLowerCase() + last.slice(1) : "fetch failed";
}

/** A {@link ClientError} for a request that never got an answer. */
export function unreachable(url: string, err: unknown): ClientError {
  const reason = fetchFailureReason(err);
  const hint = /refused/i.test(reason) ? " (is the server running? start one with `deno task serve`)" : "";
  return new ClientError(`cannot reach ${url}: ${reason}${hint}`);
}

/** Folds a message onto one line. */
function oneLine(message: string): string {
  return message.trim().replace(/\s*\n\s*/g, " ");
}

/** The message of an OpenAI-style error body (`{"error": {"message": ...}}`), else the text's first line. */
export function errorMessageOf(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof body.error === "string") return oneLine(body.error);
    if (body.error && typeof body.error.message === "string") return oneLine(body.error.message);
    if (typeof body.message === "string") return oneLine(body.message);
  } catch { /* not JSON */ }
  const line = text.trim().split("\n")[0] ?? "";
  return line.length > 200 ? line.slice(0, 200) + "…" : line || "(empty response)";
}
