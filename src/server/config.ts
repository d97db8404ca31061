/**
 * Server configuration: the seed server's kebab-case keys, read from a YAML file and overridden by
 * command-line flags, validated with zod so that an unknown or mistyped key is an error naming it.
 *
 * @module
 */

import { basename, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { LOG_LEVELS, type LogFormat, type LogLevel, parseLogLevel } from "./logger.ts";

/** 8 MiB: far above any prompt the context can take, low enough to refuse junk early. */
export const DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024;

const stringList = z.union([z.string().transform((s) => [s]), z.array(z.string())]);

/** Device names: auto (CUDA when there, else the CPU), cpu, cuda or cuda:N. */
const DEVICE_PATTERN = /^(auto|cpu|cuda(:\d+)?)$/;

/** The YAML / flag schema, keyed as the file spells it. Strict: unknown keys are errors. */
export const ServerConfigSchema = z.strictObject({
  model: z.string().min(1),
  "served-model-name": z.string().min(1).optional(),
  host: z.string().min(1).default("127.0.0.1"),
  port: z.int().min(0).max(65535).default(8137),
  device: z.string().regex(DEVICE_PATTERN, "expected auto, cpu or cuda[:N]").default("auto"),
  dtype: z.string().min(1).default("auto"),
  threads: z.int().min(1).optional(),
  "max-model-len": z.int().min(1).optional(),
  "kv-cache-tokens": z.int().min(1).optional(),
  /** Bytes (> 1) or a fraction of the memory available at start (<= 1) for the KV cache. */
  "kv-cache-memory": z.number().positive().optional(),
  /** KV cache element type; auto: float16 for quantized weights on the CPU, else float32. */
  "kv-cache-dtype": z.enum(["auto", "float32", "float16", "f32", "f16", "fp32", "fp16"]).default("auto"),
  /** Tokens per KV block (default: 64 on the CPU, 16 on CUDA). */
  "block-size": z.int().min(1).max(1024).optional(),
  "max-num-seqs": z.int().min(1).optional(),
  "max-num-batched-tokens": z.int().min(1).optional(),
  /** Target ms of a step that prefills beside decoding sequences (0: only the token budget limits it). */
  "prefill-chunk-ms": z.number().min(0).optional(),
  "max-waiting-requests": z.int().min(0).optional(),
  "prefix-caching": z.boolean().default(true),
  /** Read the weights from the mapped files (true) or copy them into memory (false); default: by size. */
  mmap: z.boolean().optional(),
  /** The same as `mmap: false`: copy the weights into memory (huge pages). */
  "no-mmap": z.boolean().optional(),
  /** Quantize weight matrices at load; int8 and int4 are aliases of q8_0 and q4_0. */
  quantize: z.enum(["q8_0", "q4_0", "q4_k", "int8", "int4"]).optional(),
  "chat-template": z.string().min(1).optional(),
  "chat-template-kwargs": z.record(z.string(), z.unknown()).default({}),
  "stop-sequences": stringList.default([]),
  "ignore-eos": z.boolean().default(false),
  "log-level": z.string().transform((s, ctx) => {
    const level = parseLogLevel(s);
    if (!level) ctx.addIssue({ code: "custom", message: `expected one of ${LOG_LEVELS.join(", ")}` });
    return level ?? "INFO";
  }).default("INFO"),
  "log-format": z.enum(["text", "json"]).default("text"),
  "auth-token": z.string().min(1).optional(),
  "auth-token-file": z.string().min(1).optional(),
  "no-auth": z.boolean().default(false),
  "cors-origins": stringList.default([]),
  "shutdown-timeout": z.number().min(0).default(30),
  "max-request-bytes": z.int().min(1024).default(DEFAULT_MAX_REQUEST_BYTES),
  /** Seconds between the engine's stats lines at INFO (0: none). */
  "stats-interval": z.number().min(0).default(10),
});

/** Config keys as written in YAML (and as `--flags`). */
export type ServerConfigKey = keyof z.input<typeof ServerConfigSchema>;

/** The names of all config keys, for the flag parser and help text. */
export const CONFIG_KEYS = Object.keys(ServerConfigSchema.shape) as ServerConfigKey[];

/** The validated configuration, in camelCase. */
export interface ServerConfig {
  /** Model directory, absolute. */
  model: string;
  /** Name reported as `model` in responses; default the model directory's name. */
  servedModelName: string;
  host: string;
  port: number;
  device: string;
  dtype: string;
  threads?: number;
  maxModelLen?: number;
  kvCacheTokens?: number;
  /** Bytes (> 1) or fraction of available memory (<= 1) for the KV cache. */
  kvCacheMemory?: number;
  /** KV cache element type ("auto": float16 for quantized weights on the CPU, else float32). */
  kvCacheDtype: "auto" | "float32" | "float16";
  /** Tokens per KV block. */
  blockSize?: number;
  /** Most sequences in one step. */
  maxNumSeqs?: number;
  /** Most tokens in one step (decode tokens plus prompt chunks). */
  maxNumBatchedTokens?: number;
  /** How long (ms) a step that prefills beside decoding sequences should take; 0: no such limit. */
  prefillChunkMs?: number;
  /** Requests that may wait for a place in the batch before new ones get 429. */
  maxWaitingRequests?: number;
  /** Share KV blocks of identical prompt prefixes. */
  prefixCaching: boolean;
  /**
   * Copy the weights into memory (true) or read them from the mapped files (false); "auto": copy when
   * they take at most half of the memory available at load (src/engine/weight_placement.ts).
   */
  weightsInMemory: boolean | "auto";
  /** Quantize weight matrices at load. */
  quantize?: "q8_0" | "q4_0" | "q4_k";
  chatTemplate?: string;
  chatTemplateKwargs: Record<string, unknown>;
  stopSequences: string[];
  ignoreEos: boolean;
  logLevel: LogLevel;
  logFormat: LogFormat;
  authToken?: string;
  authTokenFile?: string;
  noAuth: boolean;
  corsOrigins: string[];
  /** Seconds in-flight requests get to finish after SIGTERM/SIGINT. */
  shutdownTimeout: number;
  maxRequestBytes: number;
  /** Seconds between the engine's stats lines at INFO (throughput, batch, KV use, prefix hits); 0: none. */
  statsInterval: number;
}

/** A configuration problem, worded for the operator (names the key and the file or flag). */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/**
 * What one source (the flags, or the file) says of `mmap` / `no-mmap`: true to copy the weights, false
 * to map them, undefined when it says nothing. The flags' word wins over the file's.
 */
function weightsInMemory(values: Record<string, unknown>, where: string): boolean | undefined {
  const map = values["mmap"], copy = values["no-mmap"];
  if ((map === true && copy === true) || (map === false && copy === false)) {
    throw new ConfigError(`${where}: mmap and no-mmap contradict each other; give one of them`);
  }
  if (copy === true || map === false) return true;
  if (map === true || copy === false) return false;
  return undefined;
}

/** Reads a YAML config file into a plain object (validation happens after merging flags). */
export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(`config file ${path} must be a mapping of keys to values`);
  }
  return data as Record<string, unknown>;
}

/** Describes a zod issue in terms of the config key at fault. */
function describeIssue(issue: z.core.$ZodIssue, source: string): string {
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => `'${k}'`).join(", ");
    return `unknown config key ${keys} in ${source} (known keys: ${CONFIG_KEYS.join(", ")})`;
  }
  const key = issue.path.map(String).join(".");
  if (issue.code === "invalid_type" && issue.message.includes("received undefined")) {
    return `'${key}' is required (in ${source} or as --${key})`;
  }
  return `invalid value for '${key}' in ${source}: ${issue.message}`;
}

/**
 * `~` and `~/...` as the shell would expand them (YAML files have no shell to do it); other paths are
 * returned as they are. Only the home directory of the current user is known (no `~user`).
 */
export function expandHome(path: string, home: string | undefined = Deno.env.get("HOME")): string {
  if (home === undefined || home === "") return path;
  if (path === "~") return home;
  return path.startsWith("~/") ? join(home, path.slice(2)) : path;
}

/**
 * Merges the file's values with the flags' (flags win) and validates the result.
 * @param fileValues Keys from the YAML file.
 * @param flagValues Keys from the command line, already converted to their types.
 * @param source How to name the file in messages.
 */
export function resolveConfig(
  fileValues: Record<string, unknown>,
  flagValues: Record<string, unknown>,
  source = "config",
): ServerConfig {
  const merged = { ...fileValues, ...flagValues };
  const parsed = ServerConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue.path[0] ?? "");
    const where = key in flagValues ? `--${key}` : source;
    throw new ConfigError(describeIssue(issue, where));
  }
  const c = parsed.data;
  const model = resolve(expandHome(c.model));
  return {
    model,
    servedModelName: c["served-model-name"] ?? basename(model),
    host: c.host,
    port: c.port,
    device: c.device,
    dtype: c.dtype,
    threads: c.threads,
    maxModelLen: c["max-model-len"],
    kvCacheTokens: c["kv-cache-tokens"],
    kvCacheMemory: c["kv-cache-memory"],
    kvCacheDtype: c["kv-cache-dtype"] === "auto"
      ? "auto"
      : c["kv-cache-dtype"].endsWith("16")
      ? "float16"
      : "float32",
    blockSize: c["block-size"],
    maxNumSeqs: c["max-num-seqs"],
    maxNumBatchedTokens: c["max-num-batched-tokens"],
    prefillChunkMs: c["prefill-chunk-ms"],
    maxWaitingRequests: c["max-waiting-requests"],
    prefixCaching: c["prefix-caching"],
    weightsInMemory: weightsInMemory(flagValues, "command line") ?? weightsInMemory(fileValues, source) ??
      "auto",
    quantize: c.quantize === "int8" ? "q8_0" : c.quantize === "int4" ? "q4_0" : c.quantize,
    chatTemplate: c["chat-template"] === undefined ? undefined : expandHome(c["chat-template"]),
    chatTemplateKwargs: c["chat-template-kwargs"],
    stopSequences: c["stop-sequences"],
    ignoreEos: c["ignore-eos"],
    logLevel: c["log-level"],
    logFormat: c["log-format"],
    authToken: c["auth-token"],
    authTokenFile: c["auth-token-file"] === undefined ? undefined : expandHome(c["auth-token-file"]),
    noAuth: c["no-auth"],
    corsOrigins: c["cors-origins"],
    shutdownTimeout: c["shutdown-timeout"],
    maxRequestBytes: c["max-request-bytes"],
    statsInterval: c["stats-interval"],
  };
}
