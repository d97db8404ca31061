/**
 * The HTTP app: Hono routes of the OpenAI API on a served model, with request ids, CORS, bearer auth,
 * a body-size limit and OpenAI-style errors. {@link createApp} is the whole server minus the socket,
 * so tests can drive it in-process with `app.request(...)`; {@link createLoadingApp} answers while the
 * model is still loading.
 *
 * @module
 */

import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { ApiError } from "../api/errors.ts";
import { bearerAuth } from "./auth.ts";
import type { AppConfig, AppDeps, AppEnv } from "./context.ts";
import { toApiError } from "./errors.ts";
import { Lifecycle } from "./lifecycle.ts";
import type { Logger } from "./logger.ts";
import { chatCompletions } from "./routes/chat.ts";
import { completions } from "./routes/completions.ts";
import { metrics } from "./routes/metrics.ts";
import { listModels, retrieveModel } from "./routes/models.ts";

/** Client-chosen request ids are kept only when short and plain, so they are safe in logs. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

function newRequestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The middleware and error handling both apps share; `/health` reflects `lifecycle`. */
function baseApp(config: AppConfig, logger: Logger, lifecycle: Lifecycle): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    const given = c.req.header("x-request-id");
    const requestId = given && CLIENT_REQUEST_ID.test(given) ? given : newRequestId();
    const log = logger.child({ request_id: requestId });
    c.set("requestId", requestId);
    c.set("log", log);
    const started = performance.now();
    await next();
    c.header("x-request-id", requestId);
    log.debug(`${c.req.method} ${c.req.path} -> ${c.res.status}`, {
      ms: Math.round(performance.now() - started),
    });
  });

  if (config.corsOrigins.length > 0) {
    const any = config.corsOrigins.includes("*");
    app.use(cors({
      origin: any ? "*" : config.corsOrigins,
      allowMethods: ["GET", "POST", "OPTIONS"],
      exposeHeaders: ["x-request-id"],
      maxAge: 600,
    }));
  }

  // Health stays open: load balancers and systemd probe it without a token.
  app.get("/health", (c) => {
    const state = lifecycle.state;
    return c.json({ status: state === "ready" ? "ok" : state }, state === "ready" ? 200 : 503);
  });

  if (config.authToken !== null) app.use(bearerAuth(config.authToken));

  app.use(bodyLimit({
    maxSize: config.maxRequestBytes,
    onError: () => {
      throw new ApiError(
        413,
        `The request body is larger than this server's limit of ${config.maxRequestBytes} bytes.`,
        "invalid_request_error",
        null,
        "request_too_large",
      );
    },
  }));

  app.notFound((c) => {
    const error = new ApiError(
      404,
      `Invalid URL (${c.req.method} ${c.req.path})`,
      "invalid_request_error",
      null,
      "unknown_url",
    );
    return c.json(error.toBody(), 404);
  });

  app.onError((err, c) => {
    const { error, internal } = toApiError(err);
    const log = c.get("log") ?? logger;
    if (internal) log.error("request failed", { err, stack: (err as Error)?.stack });
    else log.info(`request refused: ${error.status} ${error.message}`);
    // 429: tell well-behaved clients (the OpenAI SDKs honour it) when to come back.
    if (error.status === 429) c.header("Retry-After", "1");
    return c.json(error.toBody(), error.status as 400);
  });

  return app;
}

/** The serving app. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const lifecycle = deps.lifecycle ?? new Lifecycle("ready");
  const app = baseApp(deps.config, deps.logger, lifecycle);
  app.post("/v1/chat/completions", (c) => chatCompletions(c, deps, lifecycle));
  app.post("/v1/completions", (c) => completions(c, deps, lifecycle));
  app.get("/v1/models", (c) => listModels(c, deps));
  app.get("/v1/models/:id{.+}", (c) => retrieveModel(c, deps, c.req.param("id")));
  app.get("/metrics", (c) => metrics(c, deps, lifecycle));
  return app;
}

/** Answers while the model loads: health 503, the API 503 (after auth, so probing needs a token). */
export function createLoadingApp(config: AppConfig, logger: Logger, lifecycle: Lifecycle): Hono<AppEnv> {
  const app = baseApp(config, logger, lifecycle);
  app.all("/v1/*", () => {
    throw new ApiError(
      503,
      "The model is still loading; retry shortly.",
      "service_unavailable",
      null,
      "model_loading",
    );
  });
  return app;
}
