/**
 * Starts the real server process (`deno run -A main.ts serve ...`) for integration tests: a free port
 * (`--port 0`, read back from the "listening on" line), its own XDG_CONFIG_HOME so token files of
 * parallel tests never collide, stderr drained and kept for assertions, and a stop that checks the
 * process exits.
 *
 * @module
 */

import { join } from "node:path";
import { ROOT } from "./helpers.ts";

/** A running server process. */
export interface ServerProcess {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** The bearer token (printed on stderr when generated, else as given; null with --no-auth). */
  token: string | null;
  /** The XDG_CONFIG_HOME given to the process. */
  configHome: string;
  /** Where an auto-generated token is published. */
  tokenFile: string;
  /** stderr lines so far. */
  stderr: string[];
  child: Deno.ChildProcess;
  /** Sends `signal` (default SIGTERM) and waits for the exit; returns the exit code. */
  stop(signal?: Deno.Signal | null): Promise<number>;
  /** Waits until a stderr line matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** Options of {@link startServer}. */
export interface StartOptions {
  /** Fixture model name under test/fixtures/models (default llama-f32), or an absolute path. */
  model?: string;
  /** More `serve` arguments. */
  args?: string[];
  /** Wait for /health 200 (default true). */
  waitReady?: boolean;
  /** The token the args give the server (it does not print an operator's token); default: read the banner. */
  token?: string;
  env?: Record<string, string>;
}

const decoder = new TextDecoder();

/** Starts `main.ts serve` and waits until it listens (and by default until it is ready). */
export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const configHome = await Deno.makeTempDir({ prefix: "hearth-test-xdg-" });
  const model = options.model?.startsWith("/")
    ? options.model
    : join(ROOT, "test/fixtures/models", options.model ?? "llama-f32");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "main.ts"),
      "serve",
      "--model",
      model,
      "--port",
      "0",
      "--threads",
      "1",
      ...(options.args ?? []),
    ],
    cwd: ROOT,
    env: { XDG_CONFIG_HOME: configHome, NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();

  const stderr: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let ended = false;
  const drained = (async () => {
    let buffer = "";
    for await (const bytes of child.stderr) {
      buffer += decoder.decode(bytes, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        stderr.push(line);
        for (const w of waiters.splice(0)) {
          if (w.pattern.test(line)) w.resolve(line);
          else waiters.push(w);
        }
      }
    }
    if (buffer) stderr.push(buffer);
    ended = true;
  })();

  const waitForLine = (pattern: RegExp, timeoutMs = 30_000): Promise<string> => {
    const seen = stderr.find((l) => pattern.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no stderr line matching ${pattern} within ${timeoutMs}ms:\n${stderr.join("\n")}`));
      }, timeoutMs);
      waiters.push({
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      // A process that dies early will never print it.
      void drained.then(() => {
        if (ended) {
          clearTimeout(timer);
          reject(new Error(`server exited before printing ${pattern}:\n${stderr.join("\n")}`));
        }
      });
    });
  };

  let status: Promise<Deno.CommandStatus> | null = null;
  /** Sends `signal` (null: none, the process is already on its way out) and waits for the exit code. */
  const stop = async (signal: Deno.Signal | null = "SIGTERM"): Promise<number> => {
    if (!status) {
      if (signal) {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      }
      status = child.status;
    }
    const { code } = await status;
    await drained;
    await Deno.remove(configHome, { recursive: true }).catch(() => {});
    return code;
  };

  try {
    const listening = await waitForLine(/listening on http:\/\/\S+:(\d+)/);
    const port = Number(/:(\d+)/.exec(listening.split("listening on ")[1])![1]);
    const url = `http://127.0.0.1:${port}`;
    const noAuth = (options.args ?? []).includes("--no-auth");
    const banner = noAuth
      ? null
      : (await waitForLine(/^hearth auth token: /)).slice("hearth auth token: ".length).trim();
    const token = noAuth ? null : options.token ?? banner;
    if (options.waitReady ?? true) {
      const deadline = Date.now() + 30_000;
      while (true) {
        const res = await fetch(`${url}/health`).catch(() => null);
        await res?.body?.cancel();
        if (res?.status === 200) break;
        if (Date.now() > deadline) throw new Error(`server not ready:\n${stderr.join("\n")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return {
      url,
      port,
      token,
      configHome,
      tokenFile: join(configHome, "hearth", "inference", `${port}.token`),
      stderr,
      child,
      stop,
      waitForLine,
    };
  } catch (err) {
    await stop("SIGKILL");
    throw err;
  }
}

/** Runs `main.ts serve` with `args` to completion (for startup errors); returns code and stderr. */
export async function runServeOnce(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "main.ts"), "serve", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: decoder.decode(out.stderr) + decoder.decode(out.stdout) };
}
