/**
 * The running server process: binds the socket first (so `/health` answers 503 while the model
 * loads), publishes the auth token, loads the model, swaps in the serving app, and on SIGTERM/SIGINT
 * stops accepting, gives in-flight requests a grace period, aborts what is left, frees the engine
 * and removes the token file.
 *
 * @module
 */

import type { Hono } from "hono";
import type { TextGenerator } from "../engine/types.ts";
import type { ChatTemplate } from "../model/chat_template.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { createApp, createLoadingApp } from "./app.ts";
import type { AppConfig, AppEnv } from "./context.ts";
import { Lifecycle } from "./lifecycle.ts";
import type { Logger } from "./logger.ts";
import { StatsLog } from "./stats_log.ts";
import { removeTokenFile, writeTokenFile } from "./token_file.ts";

/** The model parts the app serves. */
export interface LoadedModel {
  generator: TextGenerator;
  tokenizer: Tokenizer;
  chatTemplate: ChatTemplate;
}

/** Options of {@link runServer}. */
export interface RuntimeOptions {
  host: string;
  /** 0 picks a free port (tests); the token file then uses the port actually bound. */
  port: number;
  app: Omit<AppConfig, "createdAt">;
  /** Publish the token to the per-port file (auto-generated tokens only). */
  publishToken: boolean;
  /** Seconds in-flight requests get after a stop signal. */
  shutdownTimeout: number;
  /** Seconds between the engine's stats lines (src/server/stats_log.ts); 0 or absent: none. */
  statsInterval?: number;
  logger: Logger;
  /** Loads the model; runs after the socket is bound. */
  load: () => Promise<LoadedModel>;
  /** Where the banner goes (stderr). */
  print?: (line: string) => void;
}

const encoder = new TextEncoder();
const printStderr = (line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n"));

/** A host as it goes in a URL: wildcard binds are reached through loopback; IPv6 in brackets. */
export function urlHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

/** Runs the server until a stop signal; returns the exit code. */
export async function runServer(options: RuntimeOptions): Promise<number> {
  const { logger } = options;
  const print = options.print ?? printStderr;
  const lifecycle = new Lifecycle("loading");
  const appConfig: AppConfig = { ...options.app, createdAt: Math.floor(Date.now() / 1000) };
  let current: Hono<AppEnv> = createLoadingApp(appConfig, logger, lifecycle);
  let tokenPath: string | null = null;
  let model: LoadedModel | null = null;
  let statsLog: StatsLog | null = null;
  let stopping: Promise<number> | null = null;
  let stopped!: (code: Promise<number>) => void;
  const exitCode = new Promise<number>((resolve) => (stopped = resolve));

  const cleanupTokenFile = () => {
    if (tokenPath === null) return;
    try {
      removeTokenFile(tokenPath);
    } catch (err) {
      logger.warn(`could not remove the token file ${tokenPath}: ${(err as Error).message}`);
    }
    tokenPath = null;
  };
  // A normal exit (Deno.exit, end of the event loop) also removes the file.
  globalThis.addEventListener("unload", cleanupTokenFile);

  let listening!: () => void;
  const listened = new Promise<void>((resolve) => (listening = resolve));
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.host,
      port: options.port,
      onListen: () => listening(),
      onError: (err) => {
        logger.error("unhandled error in a request", { err });
        return new Response(
          JSON.stringify({
            error: { message: "internal error", type: "server_error", param: null, code: null },
          }),
          {
            status: 500,
            headers: { "content-type": "application/json" },
          },
        );
      },
    }, (request) => current.fetch(request));
  } catch (err) {
    logger.error(`cannot listen on ${options.host}:${options.port}: ${(err as Error).message}`);
    return 1;
  }
  await listened;
  const port = server.addr.port;
  const base = `http://${urlHost(options.host)}:${port}`;
  print(`hearth: listening on ${base} (loading the model)`);

  const token = appConfig.authToken;
  if (token === null) {
    print("!".repeat(78));
    print("!! hearth is running with --no-auth: ANY local user (and anyone who can reach");
    print(`!! ${options.host}:${port}) can use this model. Only do this on a single-user host.`);
    print("!".repeat(78));
  } else {
    // A token the operator chose (--auth-token, --auth-token-file, or the config) is theirs to keep out of
    // logs: stderr usually ends in journald. Only a generated one is shown, as the seed does.
    if (options.publishToken) {
      print(`hearth auth token: ${token}`);
      print("clients must send 'Authorization: Bearer <token>'");
      print(`curl -H "Authorization: Bearer ${token}" ${base}/v1/models`);
    } else {
      print("hearth auth token: the one given by the operator (not shown)");
      print("clients must send 'Authorization: Bearer <token>'");
      print(`curl -H "Authorization: Bearer $TOKEN" ${base}/v1/models`);
    }
    if (options.publishToken) {
      try {
        tokenPath = await writeTokenFile(port, token);
        print(`shared token file: ${tokenPath}`);
      } catch (err) {
        logger.warn(
          `could not write the token file (local clients will not find the token): ${(err as Error).message}`,
        );
      }
    }
  }

  const shutdown = (reason: string): Promise<number> => {
    stopping ??= (async () => {
      logger.info(
        `${reason}: no longer accepting requests; waiting up to ${options.shutdownTimeout}s for ${lifecycle.inFlight} in flight`,
      );
      lifecycle.drain();
      const graceful = server.shutdown();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        graceful.then(() => false),
        new Promise<boolean>((
          resolve,
        ) => (timer = setTimeout(() => resolve(true), options.shutdownTimeout * 1000))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        logger.warn(`grace period over: aborting ${lifecycle.inFlight} generation(s)`);
        lifecycle.abortAll();
        // Aborted streams end with an error event promptly; do not wait forever on a stuck client.
        await Promise.race([graceful, new Promise((resolve) => setTimeout(resolve, 2000))]);
      }
      statsLog?.stop();
      try {
        await model?.generator.close();
      } catch (err) {
        logger.warn(`closing the engine failed: ${(err as Error).message}`);
      }
      cleanupTokenFile();
      logger.info("stopped");
      return 0;
    })();
    stopped(stopping);
    return stopping;
  };

  let signalCount = 0;
  const onSignal = (name: string) => () => {
    signalCount++;
    if (signalCount > 1) {
      // A second Ctrl-C means "now": skip the grace period but still clean up.
      cleanupTokenFile();
      Deno.exit(130);
    }
    void shutdown(`received ${name}`);
  };
  const signals: [Deno.Signal, () => void][] = [["SIGINT", onSignal("SIGINT")], [
    "SIGTERM",
    onSignal("SIGTERM"),
  ]];
  for (const [sig, handler] of signals) Deno.addSignalListener(sig, handler);
  const removeSignals = () => {
    for (const [sig, handler] of signals) Deno.removeSignalListener(sig, handler);
  };

  try {
    const started = performance.now();
    model = await options.load();
    if (stopping) {
      // Stopped while loading: the shutdown had no engine to close yet.
      await model.generator.close();
      return await stopping;
    }
    current = createApp({ ...model, config: appConfig, logger, lifecycle });
    lifecycle.ready();
    const generator = model.generator;
    statsLog = new StatsLog(() => generator.stats?.(), logger, options.statsInterval ?? 0);
    statsLog.start();
    const info = model.generator.info;
    logger.info(
      `ready in ${
        ((performance.now() - started) / 1000).toFixed(2)
      }s: serving '${appConfig.servedModelName}' ` +
        `(${info.architecture}, ${info.dtype}, context ${info.maxContext}, vocabulary ${info.vocabSize}) at ${base}/v1`,
    );
  } catch (err) {
    logger.error(`could not load the model: ${(err as Error).message}`);
    lifecycle.drain();
    await server.shutdown();
    cleanupTokenFile();
    removeSignals();
    return 1;
  }

  void server.finished.then(() => shutdown("server finished"));
  const code = await exitCode;
  removeSignals();
  globalThis.removeEventListener("unload", cleanupTokenFile);
  return code;
}
