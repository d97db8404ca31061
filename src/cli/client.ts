/**
 * `main.ts client`: a command-line client of any OpenAI-compatible server, hearth first.
 *
 *   deno task client                                   interactive chat
 *   deno task client --message "Hi"                    one chat turn
 *   deno task client --completion "Once upon a time"   a text completion (prompt echoed)
 *   echo "Once upon a time" | deno task client         stdin as the completion prompt
 *   deno task client --health | --list-models
 *
 * Generated text streams to stdout; usage and diagnostics go to stderr. Errors end the run with one
 * line on stderr and exit code 1 (2 for a bad command line or config file). With no token given and a
 * loopback `--url`, the token comes from the server's per-port token file.
 *
 * @module
 */

import { FlagError, formatHelp, parseFlags } from "./flags.ts";
import { ApiClient } from "./client/api.ts";
import { resolveToken } from "./client/auth.ts";
import { chatBody, completionBody, turnMessages } from "./client/body.ts";
import { loadClientConfig } from "./client/config_file.ts";
import { ClientError, HttpError } from "./client/errors.ts";
import { type GenerationResult, streamGeneration, usageLine } from "./client/generate.ts";
import { runChat } from "./client/interactive.ts";
import { readLines } from "./client/lines.ts";
import {
  CLIENT_FLAGS,
  type ClientMode,
  type ClientOptions,
  resolveOptions,
  selectMode,
} from "./client/options.ts";
import { type Output, stdio } from "./client/output.ts";

const USAGE = "usage: deno task client [CONFIG.yaml] [--message TEXT | --completion TEXT | --health | " +
  "--list-models] [options]\n" +
  "  (no mode: interactive chat on a terminal, or stdin as a completion prompt when piped)";

/** What {@link runClient} reads from the process (replaceable in tests). */
export interface ClientIo {
  output: Output;
  stdinIsTerminal: boolean;
  stdin: ReadableStream<Uint8Array>;
}

/** Reads all of a stream as text. */
async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

/** The model to request: `--model`, else the server's first model (servers that list none: none). */
async function chooseModel(api: ApiClient, options: ClientOptions): Promise<string | undefined> {
  if (options.model !== undefined) return options.model;
  try {
    return (await api.listModels())[0];
  } catch (err) {
    // A server without /v1/models can still serve a request that names no model.
    if (err instanceof HttpError && (err.status === 404 || err.status === 405)) return undefined;
    throw err;
  }
}

/** Runs one generation request of a one-shot mode; returns the exit code. */
async function oneShot(
  api: ApiClient,
  options: ClientOptions,
  mode: "message" | "completion" | "stdin",
  io: ClientIo,
): Promise<number> {
  let prompt: string;
  if (mode === "stdin") {
    // `echo "text" |` ends the prompt with a newline that is not part of it.
    prompt = (await readAll(io.stdin)).replace(/(\r?\n)+$/, "");
    if (prompt.trim() === "") throw new FlagError("stdin is empty: nothing to complete");
  } else {
    prompt = mode === "message" ? options.message! : options.completion!;
  }
  const model = await chooseModel(api, options);
  const { output } = io;
  let result: GenerationResult;
  if (mode === "message") {
    const body = chatBody(options, model, turnMessages(options.system, [], prompt));
    result = await streamGeneration(api, "chat", body, output);
  } else {
    // The echo is printed by the client rather than asked of the server, so any server gives the same
    // output; it waits for the server's answer so that a refused request prints only the error.
    result = await streamGeneration(api, "completion", completionBody(options, model, prompt), output, {
      prefix: options.echo ? prompt : "",
    });
  }
  output.out("\n");
  if (options.showUsage) output.err(usageLine(result));
  return 0;
}

/** Runs the mode the options ask for; returns the exit code. */
async function runMode(mode: ClientMode, options: ClientOptions, io: ClientIo): Promise<number> {
  const auth = await resolveToken(options);
  const api = new ApiClient({ baseUrl: options.url, token: auth.token, tokenSource: auth.source });
  const { output } = io;
  switch (mode) {
    case "health": {
      const health = await api.health();
      output.out((health.body || `HTTP ${health.status}`) + "\n");
      if (health.ok) return 0;
      output.err(`hearth client: ${api.healthUrl()} answered HTTP ${health.status}: not ready`);
      return 1;
    }
    case "list-models": {
      for (const id of await api.listModels()) output.out(id + "\n");
      return 0;
    }
    case "chat":
      return await runChat({
        api,
        options,
        model: await chooseModel(api, options),
        output,
        lines: readLines(io.stdin),
      });
    default:
      return await oneShot(api, options, mode, io);
  }
}

/** Parses the command line (and config file) and runs the client; returns the exit code. */
export async function runClient(args: string[], io: ClientIo): Promise<number> {
  const { output } = io;
  let options: ClientOptions;
  try {
    const flags = parseFlags(args, CLIENT_FLAGS);
    if (flags.help) {
      output.out(formatHelp(USAGE, CLIENT_FLAGS) + "\n");
      return 0;
    }
    const { config: configFlag, ...values } = flags.values;
    if (flags.positionals.length > 1) {
      throw new FlagError(`unexpected arguments: ${flags.positionals.slice(1).join(" ")}`);
    }
    if (configFlag !== undefined && flags.positionals.length > 0) {
      throw new FlagError("give the config file either as --config or as the positional argument, not both");
    }
    const configPath = (configFlag as string | undefined) ?? flags.positionals[0];
    const fileValues = configPath ? await loadClientConfig(configPath, CLIENT_FLAGS) : {};
    options = resolveOptions(fileValues, values);
  } catch (err) {
    if (err instanceof FlagError) {
      output.err(`hearth client: ${err.message} (--help lists the options)`);
      return 2;
    }
    throw err;
  }
  try {
    return await runMode(selectMode(options, io.stdinIsTerminal), options, io);
  } catch (err) {
    if (err instanceof FlagError) {
      output.err(`hearth client: ${err.message}`);
      return 2;
    }
    if (err instanceof ClientError) {
      output.err(`hearth client: ${err.message}`);
      return 1;
    }
    // The reader of stdout went away (`| head`): nothing more to say to anyone.
    if (err instanceof Deno.errors.BrokenPipe) return 0;
    throw err;
  }
}

/** `main.ts client` entry point: runs on the process's stdio; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  return await runClient(args, {
    output: stdio(),
    stdinIsTerminal: Deno.stdin.isTerminal(),
    stdin: Deno.stdin.readable,
  });
}
