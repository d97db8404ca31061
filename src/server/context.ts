/**
 * What the app's handlers share: the served model, the server-wide settings, and the per-request
 * variables Hono carries (request id and the logger bound to it).
 *
 * @module
 */

import type { TextGenerator } from "../engine/types.ts";
import type { ChatTemplate } from "../model/chat_template.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { DEFAULT_MAX_REQUEST_BYTES } from "./config.ts";
import type { Lifecycle } from "./lifecycle.ts";
import type { Logger } from "./logger.ts";

/** Server-wide settings the app needs (a slice of ServerConfig, plus the resolved auth token). */
export interface AppConfig {
  /** Reported as `model` in every response. */
  servedModelName: string;
  /** Bearer token, or null when auth is off (`--no-auth`). */
  authToken: string | null;
  /** Origins allowed by CORS; empty = CORS off; `*` = any. */
  corsOrigins: string[];
  /** Added to every request's `stop`. */
  stopSequences: string[];
  /** Default of `ignore_eos`. */
  ignoreEos: boolean;
  /** Chat template variables for every request (a request's own win). */
  chatTemplateKwargs: Record<string, unknown>;
  /** Bodies larger than this get a 413. */
  maxRequestBytes: number;
  /** Unix time the model was loaded, for `created` in /v1/models. */
  createdAt: number;
}

/** Fills in defaults, so tests name only what they care about. */
export function appConfig(partial: Partial<AppConfig> = {}): AppConfig {
  return {
    servedModelName: "model",
    authToken: null,
    corsOrigins: [],
    stopSequences: [],
    ignoreEos: false,
    chatTemplateKwargs: {},
    maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
    createdAt: Math.floor(Date.now() / 1000),
    ...partial,
  };
}

/** Everything the routes use. */
export interface AppDeps {
  generator: TextGenerator;
  tokenizer: Tokenizer;
  chatTemplate: ChatTemplate;
  config: AppConfig;
  logger: Logger;
  /** Readiness and shutdown; a ready one is made when absent. */
  lifecycle?: Lifecycle;
}

/** Hono's typed per-request variables. */
export type AppEnv = {
  Variables: {
    requestId: string;
    log: Logger;
  };
};
