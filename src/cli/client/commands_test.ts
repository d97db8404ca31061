import { assertEquals } from "../../../test/assert.ts";
import { parseChatInput } from "./commands.ts";

Deno.test("commands and messages", () => {
  assertEquals(parseChatInput("  "), { kind: "empty" });
  for (const q of ["quit", "exit", "q", " QUIT ", "/quit"]) {
    assertEquals(parseChatInput(q), { kind: "quit" }, q);
  }
  assertEquals(parseChatInput("/help"), { kind: "help" });
  assertEquals(parseChatInput("/clear"), { kind: "clear" });
  assertEquals(parseChatInput("/system  Be brief. "), { kind: "system", text: "Be brief." });
  assertEquals(parseChatInput("/system"), { kind: "system", text: "" });
  assertEquals(parseChatInput("/nope x"), { kind: "unknown", command: "/nope" });
  assertEquals(parseChatInput(" Hello there "), { kind: "message", text: "Hello there" });
  // Only the whole line is a quit: a sentence starting with the word is a message.
  assertEquals(parseChatInput("quit smoking?").kind, "message");
});
