/**
 * Shared bits of the server tests: fixture paths, an in-process app over the fake engine, and SSE
 * parsing for raw-fetch tests.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ChatTemplate, resolveChatTemplate } from "../../src/model/chat_template.ts";
import { Tokenizer } from "../../src/model/tokenizer.ts";
import { createApp } from "../../src/server/app.ts";
import { type AppConfig, appConfig } from "../../src/server/context.ts";
import { Lifecycle } from "../../src/server/lifecycle.ts";
import { Logger, type LogLevel } from "../../src/server/logger.ts";
import { FakeEngine, type FakeEngineOptions } from "./fake_engine.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The fixture model the server tests use (tiny ChatML byte-level BPE tokenizer, vocab 512). */
export const FIXTURE_MODEL = join(ROOT, "test/fixtures/models/llama-f32");

let cachedTokenizer: Tokenizer | undefined;

/** The fixture model's tokenizer (loaded once per test file). */
export async function fixtureTokenizer(): Promise<Tokenizer> {
  cachedTokenizer ??= await Tokenizer.load(FIXTURE_MODEL);
  return cachedTokenizer;
}

/** An in-process app with its fake engine and captured log lines. */
export interface TestApp {
  app: ReturnType<typeof createApp>;
  engine: FakeEngine;
  tokenizer: Tokenizer;
  lines: string[];
  lifecycle: Lifecycle;
  /** `app.request` with JSON body and the bearer token when there is one. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
}

/** Options of {@link makeApp}. */
export interface MakeAppOptions {
  engine?: FakeEngineOptions;
  config?: Partial<AppConfig>;
  logLevel?: LogLevel;
  chatTemplate?: ChatTemplate;
}

/** Builds the real app over the fake engine and the fixture tokenizer. */
export async function makeApp(options: MakeAppOptions = {}): Promise<TestApp> {
  const tokenizer = await fixtureTokenizer();
  const engine = new FakeEngine({ vocabSize: tokenizer.vocabSize, eosTokenIds: [2], ...options.engine });
  const lines: string[] = [];
  const logger = new Logger({
    level: options.logLevel ?? "DEBUG",
    format: "json",
    sink: (l) => lines.push(l),
  });
  const config = appConfig({ servedModelName: "tiny", ...options.config });
  const chatTemplate = options.chatTemplate ??
    await resolveChatTemplate({ modelDir: FIXTURE_MODEL, tokenizer });
  const lifecycle = new Lifecycle("ready");
  const app = createApp({ generator: engine, tokenizer, chatTemplate, config, logger, lifecycle });
  const auth = (): Record<string, string> =>
    config.authToken === null ? {} : { authorization: `Bearer ${config.authToken}` };
  return {
    app,
    engine,
    tokenizer,
    lines,
    lifecycle,
    post: (path, body, headers = {}) =>
      Promise.resolve(app.request(path, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth(), ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      })),
    get: (path, headers = {}) => Promise.resolve(app.request(path, { headers: { ...auth(), ...headers } })),
  };
}

/** Splits an SSE body into its `data:` payloads (JSON parsed, `[DONE]` kept as the string). */
export function parseSse(text: string): unknown[] {
  const events: unknown[] = [];
  for (const block of text.split("\n\n")) {
    if (block.trim() === "") continue;
    const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
    events.push(data === "[DONE]" ? data : JSON.parse(data));
  }
  return events;
}
