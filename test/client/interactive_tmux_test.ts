/**
 * Interactive chat in a real terminal: the client runs in a tmux pane (its own tmux server socket)
 * against the real server; keys are sent with `send-keys` and the screen read with `capture-pane`.
 * Two turns, `/system`, `/clear`, `quit`; the server's request log shows the history each turn sent.
 * Skipped, saying so, where tmux is not installed.
 */

import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { startServer } from "../server/process.ts";
import { clientCommand, shellQuote } from "./client_process.ts";

const decoder = new TextDecoder();

async function tmuxAvailable(): Promise<boolean> {
  try {
    return (await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

const hasTmux = await tmuxAvailable();
if (!hasTmux) {
  console.warn("SKIPPED interactive chat test: tmux is not installed (apt-get install -y tmux)");
}

/** A tmux server of our own (`-S`, a socket in a temporary directory), so nothing touches the user's. */
class Tmux {
  constructor(readonly dir: string) {}

  async run(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-S", join(this.dir, "tmux.sock"), ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`tmux ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
    return decoder.decode(out.stdout);
  }

  /** The whole pane, scrollback included, wrapped lines joined. */
  capture(): Promise<string> {
    return this.run("capture-pane", "-p", "-J", "-S", "-", "-t", "chat");
  }

  /** Types `text` literally, then Enter. */
  async type(text: string): Promise<void> {
    await this.run("send-keys", "-t", "chat", "-l", text);
    await this.run("send-keys", "-t", "chat", "Enter");
  }

  /** Waits until `check` accepts the screen; returns it. */
  async waitFor(what: string, check: (screen: string) => boolean, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const screen = await this.capture();
      if (check(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the pane shows:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Ends the tmux server (and the pane's processes) and removes its socket. */
  async kill(): Promise<void> {
    await this.run("kill-server").catch(() => {});
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** How many prompts the pane shows (one more each time the client is ready for a line). */
const prompts = (screen: string) => screen.split("\n").filter((l) => l.startsWith("You: ")).length;

Deno.test({
  name: "interactive chat in a tmux pane: two turns, /system, /clear, quit",
  ignore: !hasTmux,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const server = await startServer({ args: ["--log-level", "INFO"] });
    const tmux = new Tmux(await Deno.makeTempDir({ prefix: "hearth-tmux-" }));
    try {
      const client = [
        ...clientCommand(),
        "--url",
        `${server.url}/v1`,
        "--max-tokens",
        "6",
        "--temperature",
        "0",
      ]
        .map(shellQuote).join(" ");
      // The pane outlives the client so its exit status can be read.
      const script =
        `env XDG_CONFIG_HOME=${shellQuote(server.configHome)} NO_COLOR=1 ${client} --show-usage; ` +
        `echo "CLIENT-EXIT=$?"; sleep 60`;
      await tmux.run("new-session", "-d", "-s", "chat", "-x", "160", "-y", "50", "sh", "-c", script);

      await tmux.waitFor("the first prompt", (s) => prompts(s) === 1);
      await tmux.type("Hello there");
      let screen = await tmux.waitFor("the first reply", (s) => prompts(s) === 2);
      assert(/^Assistant: .+/m.test(screen), screen);
      assert(/^usage: prompt_tokens=\d+, completion_tokens=\d+/m.test(screen), screen);

      await tmux.type("/system Be brief.");
      await tmux.waitFor("/system", (s) => s.includes("(system prompt set)") && prompts(s) === 3);
      await tmux.type("And a second turn");
      await tmux.waitFor("the second reply", (s) => prompts(s) === 4);

      await tmux.type("/clear");
      await tmux.waitFor("/clear", (s) => s.includes("(conversation cleared)") && prompts(s) === 5);
      await tmux.type("Third");
      await tmux.waitFor("the third reply", (s) => prompts(s) === 6);

      await tmux.type("quit");
      screen = await tmux.waitFor("the client to exit", (s) => s.includes("CLIENT-EXIT="));
      assertStringIncludes(screen, "CLIENT-EXIT=0");
      assertEquals(screen.split("\n").filter((l) => l.startsWith("Assistant: ")).length, 3);

      // What each turn sent: 1 message; then system + 2 of history + the new one; after /clear the
      // system prompt and the new message.
      const counts = server.stderr
        .filter((l) => l.includes("New chat completion request"))
        .map((l) => Number(/messages=(\d+)/.exec(l)![1]));
      assertEquals(counts, [1, 4, 2]);
    } finally {
      await tmux.kill();
      await server.stop();
    }
  },
});
