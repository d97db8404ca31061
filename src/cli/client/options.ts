/**
 * The client's options: its flags (the seed client's kebab-case names), the same keys in a YAML
 * config file, and the merge of both (flags win) into typed {@link ClientOptions}.
 *
 * @module
 */

import { FlagError, type FlagSpec } from "../flags.ts";

/** Where the client looks for a server when `--url` is not given (hearth's default port). */
export const DEFAULT_URL = "http://localhost:8137/v1";

/** Every client option, as a flag and as a config-file key. */
export const CLIENT_FLAGS: Record<string, FlagSpec> = {
  config: { kind: "string", help: "YAML config file (also accepted as the positional argument)" },
  url: { kind: "string", short: "u", help: `server's API base URL (default ${DEFAULT_URL})` },
  model: { kind: "string", short: "m", help: "model name to request (default: the server's first model)" },
  message: { kind: "string", help: "send one chat message, print the reply and exit" },
  completion: { kind: "string", help: "complete TEXT (a text completion), print it and exit" },
  echo: { kind: "bool", help: "print the completion prompt before the completion (the default)" },
  "no-echo": { kind: "bool", help: "print only the completion, not the prompt" },
  health: { kind: "bool", help: "check the server's /health and exit" },
  "list-models": { kind: "bool", help: "print the served model ids and exit" },
  system: { kind: "string", help: "system prompt of the chat" },
  "max-tokens": { kind: "int", help: "most tokens to generate (default 512)" },
  temperature: { kind: "number", help: "sampling temperature (default 0.7)" },
  "top-p": { kind: "number", help: "nucleus sampling probability mass" },
  stop: { kind: "append", help: "stop sequence" },
  "show-usage": { kind: "bool", help: "print token usage on stderr after each reply" },
  "repetition-penalty": { kind: "number", help: "repetition penalty (1 = off)" },
  "no-repeat-ngram-size": { kind: "int", help: "never repeat an n-gram of this size (0 = off)" },
  "top-k": { kind: "int", help: "sample from the k most likely tokens (0 = off)" },
  "num-beams": { kind: "int", help: "beam search width (sent as num_beams)" },
  "min-length": { kind: "int", help: "minimum length of the generation (sent as min_length)" },
  seed: { kind: "int", help: "random seed, for repeatable sampling" },
  "ignore-eos": { kind: "bool", help: "keep generating past the end-of-sequence token" },
  "auth-token": { kind: "string", help: "bearer token (visible in ps: prefer --auth-token-file)" },
  "auth-token-file": { kind: "string", help: "file holding the bearer token" },
};

/** What the client does. */
export type ClientMode = "chat" | "message" | "completion" | "stdin" | "health" | "list-models";

/** Extra generation parameters, sent at the top level of the request body under these names. */
export interface ExtraParams {
  repetition_penalty?: number;
  no_repeat_ngram_size?: number;
  top_k?: number;
  num_beams?: number;
  min_length?: number;
  seed?: number;
  ignore_eos?: boolean;
}

/** The resolved options of one client run. */
export interface ClientOptions {
  url: string;
  model?: string;
  /** The text of `--message` or `--completion`. */
  message?: string;
  completion?: string;
  echo: boolean;
  health: boolean;
  listModels: boolean;
  system?: string;
  maxTokens: number;
  temperature: number;
  topP?: number;
  stop: string[];
  showUsage: boolean;
  extra: ExtraParams;
  authToken?: string;
  authTokenFile?: string;
}

/** Flag name of each extra parameter and its name in the request body. */
const EXTRA_KEYS: [string, keyof ExtraParams][] = [
  ["repetition-penalty", "repetition_penalty"],
  ["no-repeat-ngram-size", "no_repeat_ngram_size"],
  ["top-k", "top_k"],
  ["num-beams", "num_beams"],
  ["min-length", "min_length"],
  ["seed", "seed"],
  ["ignore-eos", "ignore_eos"],
];

/** `--echo` / `--no-echo` of one source (file or flags), or undefined when it sets neither. */
function echoOf(values: Record<string, unknown>, source: string): boolean | undefined {
  const echo = values.echo as boolean | undefined;
  const noEcho = values["no-echo"] as boolean | undefined;
  if (echo !== undefined && noEcho !== undefined) {
    if (echo === !noEcho) return echo;
    throw new FlagError(`${source}: echo and no-echo contradict each other`);
  }
  if (noEcho !== undefined) return !noEcho;
  return echo;
}

/**
 * Merges config-file values and flag values (flags win; a list given as a flag replaces the file's)
 * into the client's options, checking that they make sense.
 */
export function resolveOptions(
  fileValues: Record<string, unknown>,
  flagValues: Record<string, unknown>,
): ClientOptions {
  const v: Record<string, unknown> = { ...fileValues, ...flagValues };
  const echo = echoOf(flagValues, "flags") ?? echoOf(fileValues, "config") ?? true;
  const extra: ExtraParams = {};
  for (const [flag, field] of EXTRA_KEYS) {
    if (v[flag] !== undefined) (extra as Record<string, unknown>)[field] = v[flag];
  }
  const options: ClientOptions = {
    url: (v.url as string | undefined) ?? DEFAULT_URL,
    model: v.model as string | undefined,
    message: v.message as string | undefined,
    completion: v.completion as string | undefined,
    echo,
    health: (v.health as boolean | undefined) ?? false,
    listModels: (v["list-models"] as boolean | undefined) ?? false,
    system: v.system as string | undefined,
    maxTokens: (v["max-tokens"] as number | undefined) ?? 512,
    temperature: (v.temperature as number | undefined) ?? 0.7,
    topP: v["top-p"] as number | undefined,
    stop: (v.stop as string[] | undefined) ?? [],
    showUsage: (v["show-usage"] as boolean | undefined) ?? false,
    extra,
    authToken: v["auth-token"] as string | undefined,
    authTokenFile: v["auth-token-file"] as string | undefined,
  };
  checkOptions(options);
  return options;
}

function checkOptions(o: ClientOptions): void {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new FlagError(`--url: '${o.url}' is not a URL (expected e.g. ${DEFAULT_URL})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new FlagError(`--url: '${o.url}' is not an http(s) URL`);
  }
  if (o.maxTokens < 1) throw new FlagError(`--max-tokens must be at least 1, got ${o.maxTokens}`);
  if (o.temperature < 0) throw new FlagError(`--temperature must be >= 0, got ${o.temperature}`);
  if (o.authToken !== undefined && o.authTokenFile !== undefined) {
    throw new FlagError("give either --auth-token or --auth-token-file, not both");
  }
  const modes = [
    o.health && "--health",
    o.listModels && "--list-models",
    o.message !== undefined && "--message",
    o.completion !== undefined && "--completion",
  ].filter(Boolean);
  if (modes.length > 1) throw new FlagError(`give only one of ${modes.join(", ")}`);
}

/** The mode the options ask for; `stdinIsTerminal` decides between interactive chat and a piped prompt. */
export function selectMode(o: ClientOptions, stdinIsTerminal: boolean): ClientMode {
  if (o.health) return "health";
  if (o.listModels) return "list-models";
  if (o.message !== undefined) return "message";
  if (o.completion !== undefined) return "completion";
  return stdinIsTerminal ? "chat" : "stdin";
}
