/**
 * Request bodies from the client's options: the OpenAI sampling fields plus the extra generation
 * parameters at the top level (where the SDKs' `extra_body` puts them), each only when it was given,
 * so the server's (or the model's) defaults apply to the rest.
 *
 * @module
 */

import type { ClientOptions } from "./options.ts";

/** One chat message. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** The fields every generation request carries. */
export function samplingFields(o: ClientOptions, model: string | undefined): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (model !== undefined) body.model = model;
  body.max_tokens = o.maxTokens;
  body.temperature = o.temperature;
  if (o.topP !== undefined) body.top_p = o.topP;
  if (o.stop.length > 0) body.stop = o.stop;
  for (const [key, value] of Object.entries(o.extra)) {
    if (value !== undefined) body[key] = value;
  }
  // Usage comes as a last chunk only when asked for.
  if (o.showUsage) body.stream_options = { include_usage: true };
  return body;
}

/** The body of a chat request. */
export function chatBody(
  o: ClientOptions,
  model: string | undefined,
  messages: readonly ChatMessage[],
): Record<string, unknown> {
  return { ...samplingFields(o, model), messages };
}

/** The body of a text completion request. */
export function completionBody(
  o: ClientOptions,
  model: string | undefined,
  prompt: string,
): Record<string, unknown> {
  return { ...samplingFields(o, model), prompt };
}

/** The messages of a chat turn: the system prompt (if any), the history, the new user message. */
export function turnMessages(
  system: string | undefined,
  history: readonly ChatMessage[],
  user: string,
): ChatMessage[] {
  return [
    ...(system !== undefined && system !== "" ? [{ role: "system" as const, content: system }] : []),
    ...history,
    { role: "user", content: user },
  ];
}
