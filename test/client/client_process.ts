/**
 * Runs the client as the user does, `deno run -A main.ts client ...`, in a subprocess: stdin given or
 * empty, its own environment (XDG_CONFIG_HOME decides which token file it finds), stdout and stderr
 * captured apart.
 *
 * @module
 */

import { join } from "node:path";
import { ROOT } from "../server/helpers.ts";

/** The outcome of one client run. */
export interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link runClientProcess}. */
export interface ClientRunOptions {
  /** Text piped to stdin (default: none, stdin is /dev/null). */
  stdin?: string;
  /** XDG_CONFIG_HOME of the client (where it looks for token files). */
  configHome?: string;
  env?: Record<string, string>;
}

const decoder = new TextDecoder();

/** The command line that runs the client (for shells and tmux). */
export function clientCommand(): string[] {
  return [Deno.execPath(), "run", "-A", join(ROOT, "main.ts"), "client"];
}

/** Runs the client with `args` to completion. */
export async function runClientProcess(args: string[], options: ClientRunOptions = {}): Promise<ClientRun> {
  const [cmd, ...base] = clientCommand();
  const child = new Deno.Command(cmd, {
    args: [...base, ...args],
    cwd: ROOT,
    env: {
      NO_COLOR: "1",
      ...(options.configHome ? { XDG_CONFIG_HOME: options.configHome } : {}),
      ...options.env,
    },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Runs a shell command line (a pipeline) in the repository root; returns its outcome. */
export async function runShell(script: string, env: Record<string, string> = {}): Promise<ClientRun> {
  const out = await new Deno.Command("sh", {
    args: ["-c", script],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Quotes a string for sh. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
