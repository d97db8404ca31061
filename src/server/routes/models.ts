/**
 * `GET /v1/models` and `GET /v1/models/{id}`: the one served model.
 *
 * @module
 */

import type { Context } from "hono";
import { ApiError } from "../../api/errors.ts";
import type { Model } from "../../api/openai.ts";
import type { AppDeps, AppEnv } from "../context.ts";

/** The model entry of the served model. */
export function modelEntry(deps: AppDeps): Model {
  return {
    id: deps.config.servedModelName,
    object: "model",
    created: deps.config.createdAt,
    owned_by: "hearth",
    max_model_len: deps.generator.info.maxContext,
  };
}

/** `GET /v1/models`. */
export function listModels(c: Context<AppEnv>, deps: AppDeps): Response {
  return c.json({ object: "list", data: [modelEntry(deps)] });
}

/** `GET /v1/models/{id}`: 404 for any other id (the id may contain slashes, like "org/name"). */
export function retrieveModel(c: Context<AppEnv>, deps: AppDeps, id: string): Response {
  const entry = modelEntry(deps);
  if (id !== entry.id) {
    throw new ApiError(
      404,
      `The model '${id}' does not exist`,
      "invalid_request_error",
      "model",
      "model_not_found",
    );
  }
  return c.json(entry);
}
