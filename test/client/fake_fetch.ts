/**
 * A scripted `fetch` for the client's unit tests: records each request (URL, headers, JSON body) and
 * answers from a handler, with helpers for SSE and OpenAI-style error responses.
 *
 * @module
 */

/** One request the fake saw. */
export interface SeenRequest {
  url: string;
  method: string;
  headers: Headers;
  body: Record<string, unknown> | null;
  signal: AbortSignal | null;
}

/** A fake fetch and what it saw. */
export interface FakeFetch {
  fetch: typeof fetch;
  requests: SeenRequest[];
}

/** Builds a fake fetch answering with `handler`. */
export function fakeFetch(handler: (req: SeenRequest) => Response | Promise<Response>): FakeFetch {
  const requests: SeenRequest[] = [];
  const fake = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const text = typeof init?.body === "string" ? init.body : null;
    const req: SeenRequest = {
      url: String(input),
      method: init?.method ?? "GET",
      headers: new Headers(init?.headers),
      body: text === null ? null : JSON.parse(text),
      signal: init?.signal ?? null,
    };
    requests.push(req);
    return await handler(req);
  };
  return { fetch: fake as typeof fetch, requests };
}

/** A `text/event-stream` response sending `events` (objects as JSON, strings as they are), then [DONE]. */
export function sseResponse(events: unknown[], done = true): Response {
  const text = events.map((e) => `data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`).join("") +
    (done ? "data: [DONE]\n\n" : "");
  return new Response(text, { headers: { "content-type": "text/event-stream" } });
}

/** A `text/event-stream` response sending `events`, then breaking as a connection does when the server dies. */
export function brokenSseResponse(events: unknown[]): Response {
  const encoder = new TextEncoder();
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) {
        controller.error(new TypeError("error reading a body from connection"));
        return;
      }
      sent = true;
      for (const e of events) controller.enqueue(encoder.encode(`data: ${JSON.stringify(e)}\n\n`));
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

/** A JSON response. */
export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

/** An OpenAI-style error response. */
export function errorResponse(status: number, message: string): Response {
  return jsonResponse({ error: { message, type: "invalid_request_error", param: null, code: null } }, status);
}

/** Chat chunks streaming `pieces`, a finish reason and a usage chunk. */
export function chatChunks(pieces: string[], model = "tiny"): unknown[] {
  return [
    { model, choices: [{ index: 0, delta: { role: "assistant" }, finish_reason: null }] },
    ...pieces.map((content) => ({ model, choices: [{ index: 0, delta: { content }, finish_reason: null }] })),
    { model, choices: [{ index: 0, delta: {}, finish_reason: "length" }] },
    {
      model,
      choices: [],
      usage: { prompt_tokens: 5, completion_tokens: pieces.length, total_tokens: 5 + pieces.length },
    },
  ];
}

/** Completion chunks streaming `pieces`. */
export function completionChunks(pieces: string[], model = "tiny"): unknown[] {
  return [
    ...pieces.map((text) => ({ model, choices: [{ index: 0, text, finish_reason: null }] })),
    { model, choices: [{ index: 0, text: "", finish_reason: "stop" }] },
  ];
}
