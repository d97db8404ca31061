/**
 * Interactive chat: reads lines, keeps the conversation, streams each reply. Commands are parsed by
 * {@link parseChatInput}. A failed turn is reported on stderr and leaves the history as it was, so
 * the session goes on; Ctrl-C while a reply streams stops that reply (and drops the turn).
 *
 * @module
 */

import type { ApiClient } from "./api.ts";
import { chatBody, type ChatMessage, turnMessages } from "./body.ts";
import { CHAT_HELP, parseChatInput } from "./commands.ts";
import { ClientError } from "./errors.ts";
import { streamGeneration, usageLine } from "./generate.ts";
import type { ClientOptions } from "./options.ts";
import type { Output } from "./output.ts";

/** The prompt shown before each line the user types. */
export const USER_PROMPT = "You: ";
/** Written before each streamed reply. */
export const ASSISTANT_PREFIX = "Assistant: ";

/** What interactive chat needs. */
export interface ChatSession {
  api: ApiClient;
  options: ClientOptions;
  /** The model to request (undefined: let the server choose). */
  model: string | undefined;
  output: Output;
  /** The user's lines (stdin). */
  lines: AsyncIterable<string>;
  /**
   * Calls `abort` on Ctrl-C while a reply streams; returns the function that stops listening.
   * Default: a SIGINT listener.
   */
  onInterrupt?: (abort: () => void) => () => void;
}

function sigintListener(abort: () => void): () => void {
  const handler = () => abort();
  Deno.addSignalListener("SIGINT", handler);
  return () => Deno.removeSignalListener("SIGINT", handler);
}

/** Runs the chat until quit or end of input; returns the exit code (0). */
export async function runChat(session: ChatSession): Promise<number> {
  const { api, options, output } = session;
  const onInterrupt = session.onInterrupt ?? sigintListener;
  let system = options.system;
  let history: ChatMessage[] = [];
  output.err(
    `hearth client: chatting with ${session.model ?? "the server's model"} at ${api.baseUrl} ` +
      `(/help for commands, quit to leave)`,
  );
  const lines = session.lines[Symbol.asyncIterator]();
  while (true) {
    output.out(USER_PROMPT);
    const next = await lines.next();
    if (next.done) {
      output.out("\n");
      break;
    }
    const input = parseChatInput(next.value);
    if (input.kind === "quit") break;
    switch (input.kind) {
      case "empty":
        continue;
      case "help":
        output.out(CHAT_HELP + "\n");
        continue;
      case "clear":
        history = [];
        output.out("(conversation cleared)\n");
        continue;
      case "system":
        system = input.text === "" ? undefined : input.text;
        output.out(system === undefined ? "(system prompt removed)\n" : "(system prompt set)\n");
        continue;
      case "unknown":
        output.out(`unknown command ${input.command} (/help lists the commands)\n`);
        continue;
    }
    const messages = turnMessages(system, history, input.text);
    const controller = new AbortController();
    const stopListening = onInterrupt(() => controller.abort());
    output.out(ASSISTANT_PREFIX);
    try {
      const result = await streamGeneration(
        api,
        "chat",
        chatBody(options, session.model, messages),
        output,
        { signal: controller.signal },
      );
      output.out("\n");
      history.push({ role: "user", content: input.text }, { role: "assistant", content: result.text });
      if (options.showUsage) output.err(usageLine(result));
    } catch (err) {
      output.out("\n");
      if (controller.signal.aborted) output.err("(interrupted: the reply is not kept)");
      else if (err instanceof ClientError) output.err(`hearth client: ${err.message}`);
      else throw err;
    } finally {
      stopListening();
    }
  }
  return 0;
}
