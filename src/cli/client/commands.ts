/**
 * What a line typed in interactive chat means: a command (`/clear`, `/system <msg>`, `/help`,
 * `quit`/`exit`/`q`) or a message for the model.
 *
 * @module
 */

/** A parsed input line. */
export type ChatInput =
  | { kind: "empty" }
  | { kind: "quit" }
  | { kind: "help" }
  | { kind: "clear" }
  | { kind: "system"; text: string }
  | { kind: "unknown"; command: string }
  | { kind: "message"; text: string };

/** The help text of interactive chat. */
export const CHAT_HELP = [
  "commands:",
  "  /system <msg>   set the system prompt (/system alone removes it); the history is kept",
  "  /clear          forget the conversation (the system prompt stays)",
  "  /help           show this help",
  "  quit, exit, q   leave (so does Ctrl-D); Ctrl-C stops a reply being written",
].join("\n");

const QUIT = new Set(["quit", "exit", "q", "/quit", "/exit", "/q"]);

/** Parses one line typed at the chat prompt. */
export function parseChatInput(line: string): ChatInput {
  const text = line.trim();
  if (text === "") return { kind: "empty" };
  if (QUIT.has(text.toLowerCase())) return { kind: "quit" };
  if (!text.startsWith("/")) return { kind: "message", text };
  const [command] = text.split(/\s/, 1);
  const rest = text.slice(command.length).trim();
  switch (command) {
    case "/help":
    case "/?":
      return { kind: "help" };
    case "/clear":
      return { kind: "clear" };
    case "/system":
      return { kind: "system", text: rest };
    default:
      return { kind: "unknown", command };
  }
}
