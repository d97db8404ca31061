/**
 * Reading a request body: JSON that does not parse is a 400 (not a 500), a body that is not an object
 * is a 400, and schema violations are a 400 naming the field.
 *
 * @module
 */

import type { Context } from "hono";
import type { z } from "zod";
import { ApiError, fromZodError } from "../api/errors.ts";
import type { AppEnv } from "./context.ts";
import { rejectNotImplemented, unknownFields } from "./params.ts";

/** The body as a JSON object, or a 400. */
export async function readJsonObject(c: Context): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await c.req.text();
  } catch (err) {
    throw ApiError.invalid(`could not read the request body: ${(err as Error).message}`);
  }
  if (text.trim() === "") {
    throw ApiError.invalid("The request body is empty; expected a JSON object.", null, "invalid_json");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw ApiError.invalid(
      `We could not parse the JSON body of your request: ${(err as Error).message}`,
      null,
      "invalid_json",
    );
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw ApiError.invalid("The request body must be a JSON object.", null, "invalid_json");
  }
  return body as Record<string, unknown>;
}

/** Validates `body` against `schema`, throwing a 400 that names the first bad field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body);
  if (!result.success) throw fromZodError(result.error, body);
  return result.data;
}

/**
 * A generation route's request: the body read as JSON, validated against `schema` (a 400 naming the
 * field) and refused where it asks for what is not implemented; fields nobody knows are logged at DEBUG
 * and ignored, as OpenAI's API ignores them.
 */
export async function readGenerationRequest<S extends z.ZodObject>(
  c: Context<AppEnv>,
  schema: S,
): Promise<z.infer<S>> {
  const body = await readJsonObject(c);
  const req = parseBody(schema, body);
  rejectNotImplemented(body);
  const unknown = unknownFields(body, Object.keys(schema.shape));
  if (unknown.length > 0) c.get("log").debug("ignoring unknown request fields", { fields: unknown });
  return req;
}
