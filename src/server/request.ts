/**
 * Reading a request body: JSON that does not parse is a 400 (not a 500), a body that is not an object
 * is a 400, and schema violations are a 400 naming the field.
 *
 * @module
 */

import type { Context } from "hono";
import type { z } from "zod";
import { ApiError, fromZodError } from "../api/errors.ts";

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
