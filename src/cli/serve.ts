/**
 * `main.ts serve`: the command line and YAML config of the server, turned into a running server.
 *
 *   deno run -A main.ts serve [CONFIG.yaml] [--config FILE] --model DIR [--port 8137] ...
 *
 * Flags override the file; both use the seed server's kebab-case names (see server.yaml).
 *
 * @module
 */

import { resolveChatTemplate } from "../model/chat_template.ts";
import { Tokenizer } from "../model/tokenizer.ts";
import { generateToken } from "../server/auth.ts";
import {
  CONFIG_KEYS,
  ConfigError,
  loadConfigFile,
  resolveConfig,
  type ServerConfig,
  type ServerConfigKey,
} from "../server/config.ts";
import { Logger } from "../server/logger.ts";
import { type LoadedModel, runServer } from "../server/runtime.ts";
import { FlagError, type FlagSpec, formatHelp, parseFlags } from "./flags.ts";

/** Every config key as a flag, plus `--config`. */
export const SERVE_FLAGS: Record<string, FlagSpec> = {
  config: { kind: "string", help: "YAML config file (also accepted as the first positional argument)" },
  model: { kind: "string", short: "m", help: "model directory (Hugging Face layout)" },
  "served-model-name": { kind: "string", help: "name reported as `model` (default: the directory name)" },
  host: { kind: "string", short: "H", help: "address to bind (default 127.0.0.1)" },
  port: { kind: "int", short: "p", help: "port (default 8137; 0 picks a free one)" },
  device: { kind: "string", short: "d", help: "auto | cpu | cuda[:N] (default auto)" },
  dtype: { kind: "string", short: "T", help: "auto | float32 | float16 | bfloat16 (and aliases)" },
  threads: { kind: "int", help: "CPU threads (default: physical cores)" },
  "max-model-len": { kind: "int", help: "longest context to serve (default: the model's)" },
  "kv-cache-tokens": { kind: "int", help: "token slots in the KV cache" },
  "kv-cache-memory": {
    kind: "number",
    help: "KV cache size: bytes, or a fraction (<= 1) of available memory (default 1/4 of it, at most 4 GiB)",
  },
  "kv-cache-dtype": {
    kind: "string",
    help:
      "KV cache elements: auto | float32 | float16 (default auto: float16 for quantized weights on the CPU)",
  },
  "block-size": { kind: "int", help: "tokens per KV block (default 64 on the CPU, 16 on CUDA)" },
  "max-num-seqs": { kind: "int", help: "most sequences in one step (default 64)" },
  "max-num-batched-tokens": { kind: "int", help: "most tokens in one step (default 512)" },
  "prefill-chunk-ms": {
    kind: "number",
    help: "while requests stream, size a step's prompt chunk to take about this long (default 250; 0: off)",
  },
  "max-waiting-requests": { kind: "int", help: "queued requests before new ones get 429 (default 1024)" },
  quantize: { kind: "string", help: "quantize weights at load: q8_0 | q4_0 | q4_k (int8, int4 aliases)" },
  "prefix-caching": {
    kind: "bool",
    help: "share KV blocks of identical prompt prefixes (default on; =false disables)",
  },
  mmap: {
    kind: "bool",
    help: "read the weights from the mapped files, no copy (default: copied when they take at most half " +
      "of the available memory)",
  },
  "no-mmap": {
    kind: "bool",
    help: "copy the weights into memory (huge pages), whatever their size: faster CPU decode",
  },
  "chat-template": { kind: "string", short: "t", help: "Jinja chat template file (or a named template)" },
  "chat-template-kwargs": { kind: "json", help: "template variables for every request, as JSON" },
  "stop-sequences": { kind: "list", short: "s", help: "stop sequences added to every request" },
  "ignore-eos": { kind: "bool", help: "keep generating past EOS by default" },
  "log-level": { kind: "string", short: "l", help: "DEBUG | INFO | WARNING | ERROR (default INFO)" },
  "log-format": { kind: "string", help: "text | json (default text)" },
  "auth-token": { kind: "string", help: "bearer token clients must send (visible in ps: prefer the file)" },
  "auth-token-file": { kind: "string", help: "file holding the bearer token" },
  "no-auth": { kind: "bool", help: "disable auth (any local user can use the model)" },
  "cors-origins": { kind: "list", help: "origins allowed by CORS (default none; * for any)" },
  "shutdown-timeout": { kind: "number", help: "seconds in-flight requests get on SIGTERM (default 30)" },
  "max-request-bytes": { kind: "int", help: "largest request body accepted (default 8 MiB)" },
  "stats-interval": {
    kind: "number",
    help: "seconds between the engine's stats lines at INFO: throughput, batch, KV use, prefix hits " +
      "(default 10; 0: none)",
  },
};

// Keep the flags and the config schema in step: every key must be settable from both.
for (const key of CONFIG_KEYS) {
  if (!(key in SERVE_FLAGS)) throw new Error(`config key ${key} has no flag`);
}

const USAGE = "usage: deno task serve [CONFIG.yaml] [--config FILE] --model DIR [options]";

/** The token to require, and whether it may be published to the shared token file. */
export async function resolveAuthToken(
  config: ServerConfig,
  logger: Logger,
): Promise<{ token: string | null; publish: boolean }> {
  if (config.noAuth) {
    if (config.authToken || config.authTokenFile) {
      logger.warn("--no-auth given: ignoring the auth token settings");
    }
    return { token: null, publish: false };
  }
  if (config.authToken && config.authTokenFile) {
    throw new ConfigError("give either auth-token or auth-token-file, not both");
  }
  if (config.authToken) return { token: config.authToken.trim(), publish: false };
  if (config.authTokenFile) {
    let text: string;
    try {
      text = await Deno.readTextFile(config.authTokenFile);
    } catch (err) {
      throw new ConfigError(`cannot read auth-token-file ${config.authTokenFile}: ${(err as Error).message}`);
    }
    const token = text.trim();
    if (token === "") throw new ConfigError(`auth-token-file ${config.authTokenFile} is empty`);
    const mode = (await Deno.stat(config.authTokenFile)).mode;
    if (mode !== null && (mode & 0o077) !== 0) {
      logger.warn(`auth-token-file ${config.authTokenFile} is readable by other users; chmod 600 it`);
    }
    return { token, publish: false };
  }
  return { token: generateToken(), publish: true };
}

/**
 * Checks `--device` before anything loads: `cuda[:N]` must name a usable CUDA device (the CUDA library
 * is opened to see); `auto` and `cpu` always pass (auto falls back to the CPU).
 */
export async function checkDevice(device: string): Promise<void> {
  const { parseDevice, resolveDevice } = await import("../native/device.ts");
  try {
    const want = parseDevice(device);
    if (want !== "auto" && want.kind === "cuda") await resolveDevice(want);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/** Runs `serve`; returns the process exit code. */
export async function serve(argv: string[]): Promise<number> {
  let config: ServerConfig;
  try {
    const flags = parseFlags(argv, SERVE_FLAGS);
    if (flags.help) {
      console.log(formatHelp(USAGE, SERVE_FLAGS));
      return 0;
    }
    const { config: configFlag, ...values } = flags.values;
    if (flags.positionals.length > 1) {
      throw new FlagError(`unexpected arguments: ${flags.positionals.slice(1).join(" ")}`);
    }
    const configPath = (configFlag as string | undefined) ?? flags.positionals[0];
    if (configFlag && flags.positionals.length > 0) {
      throw new FlagError("give the config file either as --config or as the positional argument, not both");
    }
    const fileValues = configPath ? await loadConfigFile(configPath) : {};
    config = resolveConfig(
      fileValues,
      values as Partial<Record<ServerConfigKey, unknown>>,
      configPath ?? "config",
    );
    await checkDevice(config.device);
  } catch (err) {
    if (err instanceof FlagError || err instanceof ConfigError) {
      console.error(`hearth serve: ${err.message}\n${USAGE} (--help lists the options)`);
      return 2;
    }
    throw err;
  }

  const logger = new Logger({ level: config.logLevel, format: config.logFormat });
  let auth: { token: string | null; publish: boolean };
  let dtype: string;
  let threads: number;
  try {
    auth = await resolveAuthToken(config, logger);
    const { parseDtypeOption } = await import("../model/loader.ts");
    const parsed = parseDtypeOption(config.dtype);
    if (parsed.warning) logger.warn(parsed.warning);
    dtype = parsed.dtype;
    const { physicalCoreCount } = await import("./cpu_info.ts");
    threads = config.threads ?? physicalCoreCount();
  } catch (err) {
    console.error(`hearth serve: ${(err as Error).message}`);
    return 2;
  }

  const load = async (): Promise<LoadedModel> => {
    // One parse of the model's metadata serves the tokenizer, the template and the engine.
    const { describeModelPath } = await import("../model/describe.ts");
    const described = await describeModelPath(config.model);
    const tokenizer = described.tokenizer ?? await Tokenizer.load(config.model);
    void tokenizer.bytePieces; // the streamed text's byte table: built while loading, not on the first request
    const chatTemplate = await resolveChatTemplate({
      option: config.chatTemplate,
      modelDir: config.model,
      tokenizer,
    });
    logger.info(`chat template: ${chatTemplate.origin}`);
    // Imported here so that `serve --help` and config errors do not need the native library.
    const { Engine } = await import("../engine/engine.ts");
    logger.info(`loading ${config.model} (dtype ${dtype}, ${threads} threads)`);
    const generator = await Engine.fromDescription(
      described.description,
      described.generation,
      config.model,
      {
        device: config.device,
        dtype: dtype as "auto",
        threads,
        maxModelLen: config.maxModelLen,
        kvCacheTokens: config.kvCacheTokens,
        kvCacheBytes: kvCacheBytes(config.kvCacheMemory),
        kvCacheDtype: config.kvCacheDtype,
        kvBlockSize: config.blockSize,
        maxBatchSeqs: config.maxNumSeqs,
        maxBatchTokens: config.maxNumBatchedTokens,
        prefillChunkMs: config.prefillChunkMs,
        maxWaiting: config.maxWaitingRequests,
        prefixCaching: config.prefixCaching,
        weightsInMemory: config.weightsInMemory,
        quantize: config.quantize,
        warn: (message) => logger.warn(message),
      },
    );
    logger.info(
      `serving on ${generator.info.device} in ${generator.info.dtype}; KV cache ` +
        `${(generator.memory().kvCache / 2 ** 20).toFixed(1)} MiB of ${generator.info.kvCacheDtype} ` +
        `in blocks of ${generator.info.kvBlockSize} tokens; weights ${generator.info.weights}`,
    );
    if (config.quantize) {
      const mem = generator.memory();
      const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
      logger.info(
        `quantized to ${config.quantize} at load: weights in memory ${mib(mem.ownedWeights)}, ` +
          `files ${mib(mem.mappedFiles)} (saved ${mib(Math.max(0, mem.mappedFiles - mem.ownedWeights))})`,
      );
    }
    return { generator, tokenizer, chatTemplate };
  };

  return await runServer({
    host: config.host,
    port: config.port,
    app: {
      servedModelName: config.servedModelName,
      authToken: auth.token,
      corsOrigins: config.corsOrigins,
      stopSequences: config.stopSequences,
      ignoreEos: config.ignoreEos,
      chatTemplateKwargs: config.chatTemplateKwargs,
      maxRequestBytes: config.maxRequestBytes,
    },
    publishToken: auth.publish,
    shutdownTimeout: config.shutdownTimeout,
    statsInterval: config.statsInterval,
    logger,
    load,
  });
}

/** --kv-cache-memory: bytes when > 1, else that fraction of the memory available now. */
export function kvCacheBytes(setting: number | undefined): number | undefined {
  if (setting === undefined) return undefined;
  if (setting > 1) return Math.floor(setting);
  return Math.floor(Deno.systemMemoryInfo().available * setting);
}
