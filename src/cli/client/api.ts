/**
 * The few calls the client makes to an OpenAI-compatible server, over plain fetch: `/health`,
 * `GET /v1/models`, and streamed `POST /v1/chat/completions` / `/v1/completions`, whose chunks are
 * boiled down to {@link StreamDelta}s. Every failure is a {@link ClientError} with a one-line message.
 *
 * @module
 */

import { ClientError, errorMessageOf, fetchFailureReason, HttpError, unreachable } from "./errors.ts";
import { readSseData } from "./sse.ts";

/** Token counts of a response. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** What one streamed chunk adds. */
export interface StreamDelta {
  text?: string;
  finishReason?: string;
  usage?: Usage;
  /** The model that answered (as the server names it). */
  model?: string;
}

/** Which endpoint a generation uses. */
export type GenerationKind = "chat" | "completion";

/** The answer of `/health`. */
export interface HealthAnswer {
  ok: boolean;
  status: number;
  body: string;
}

/** Options of {@link ApiClient}. */
export interface ApiClientOptions {
  /** The API base, e.g. `http://localhost:8137/v1`. */
  baseUrl: string;
  token: string | null;
  /** Where the token came from, named in 401 messages. */
  tokenSource?: string;
  fetch?: typeof fetch;
}

/** The shape of a chat or completion chunk (or whole response), as far as the client reads it. */
interface ChunkLike {
  model?: string;
  usage?: Usage | null;
  choices?: {
    text?: string | null;
    delta?: { content?: string | null };
    message?: { content?: string | null };
    finish_reason?: string | null;
  }[];
  error?: unknown;
}

/** A client of one server. */
export class ApiClient {
  readonly baseUrl: string;
  #token: string | null;
  #tokenSource: string;
  #fetch: typeof fetch;

  constructor(options: ApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#tokenSource = options.tokenSource ?? "";
    this.#fetch = options.fetch ?? fetch;
  }

  /** `/health` beside the API base (`http://host:port/v1` -> `http://host:port/health`). */
  healthUrl(): string {
    return this.baseUrl.replace(/\/v1$/, "") + "/health";
  }

  /** Asks `/health`; any HTTP answer is returned, only an unreachable server throws. */
  async health(): Promise<HealthAnswer> {
    const url = this.healthUrl();
    const res = await this.#send(url, { method: "GET" });
    const body = (await readBody(res.text(), url)).trim();
    return { ok: res.ok, status: res.status, body };
  }

  /** The ids of `GET /v1/models`. */
  async listModels(): Promise<string[]> {
    const url = `${this.baseUrl}/models`;
    const res = await this.#checked(url, { method: "GET" });
    const body = await res.json().catch(() => null) as { data?: { id?: unknown }[] } | null;
    if (!body || !Array.isArray(body.data)) throw new ClientError(`${url}: not a model list`);
    return body.data.map((m) => String(m.id));
  }

  /**
   * Streams one generation: `body` goes to the endpoint with `stream: true`. A server that answers
   * with a whole JSON response instead is read as one delta.
   */
  async *stream(
    kind: GenerationKind,
    body: Record<string, unknown>,
    signal?: AbortSignal,
  ): AsyncGenerator<StreamDelta> {
    const url = `${this.baseUrl}/${kind === "chat" ? "chat/completions" : "completions"}`;
    const res = await this.#checked(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ ...body, stream: true }),
      signal,
    });
    if (!res.body) throw new ClientError(`${url}: empty response`);
    if (!(res.headers.get("content-type") ?? "").includes("text/event-stream")) {
      yield deltaOf(await res.json().catch(() => ({})) as ChunkLike, url);
      return;
    }
    const events = readSseData(res.body)[Symbol.asyncIterator]();
    try {
      while (true) {
        const next = await readBody(events.next(), url, signal);
        if (next.done || next.value === "[DONE]") return;
        let chunk: ChunkLike;
        try {
          chunk = JSON.parse(next.value);
        } catch {
          throw new ClientError(`${url}: malformed stream event: ${next.value.slice(0, 120)}`);
        }
        yield deltaOf(chunk, url);
      }
    } finally {
      // Stopping early (or failing) closes the connection.
      await events.return?.(undefined).catch(() => {});
    }
  }

  async #send(url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#token !== null) headers.set("authorization", `Bearer ${this.#token}`);
    try {
      return await this.#fetch(url, { ...init, headers });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw unreachable(url, err);
    }
  }

  /** Sends and turns an error status into an {@link HttpError}. */
  async #checked(url: string, init: RequestInit): Promise<Response> {
    const res = await this.#send(url, init);
    if (res.ok) return res;
    const message = errorMessageOf(await res.text().catch(() => ""));
    let hint = "";
    if (res.status === 401) {
      hint = this.#token === null
        ? `${this.#tokenSource || "no token given"}; pass --auth-token or --auth-token-file`
        : `sent the token from ${this.#tokenSource || "the options"}`;
    }
    if (res.status === 404 && !/\/v1$/.test(this.baseUrl)) hint = "does --url end with /v1?";
    throw new HttpError(res.status, message, url, hint);
  }
}

/**
 * Awaits a read of a response body; a connection that breaks on the way (the server died mid-reply)
 * is a {@link ClientError}, not the runtime's TypeError. An abort of `signal` is passed on as it is.
 */
async function readBody<T>(read: Promise<T>, url: string, signal?: AbortSignal): Promise<T> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof ClientError || signal?.aborted) throw err;
    throw new ClientError(`${url}: the connection broke before the answer ended: ${fetchFailureReason(err)}`);
  }
}

/** The text, finish reason, usage and model of one chunk; an error event throws. */
export function deltaOf(chunk: ChunkLike, url: string): StreamDelta {
  if (chunk.error !== undefined && chunk.error !== null) {
    throw new ClientError(
      `${url}: the server ended the stream with an error: ${
        errorMessageOf(JSON.stringify({ error: chunk.error }))
      }`,
    );
  }
  const delta: StreamDelta = {};
  if (chunk.model) delta.model = chunk.model;
  if (chunk.usage) delta.usage = chunk.usage;
  const choice = chunk.choices?.[0];
  if (choice) {
    const text = choice.delta?.content ?? choice.text ?? choice.message?.content;
    if (text) delta.text = text;
    if (choice.finish_reason) delta.finishReason = choice.finish_reason;
  }
  return delta;
}
