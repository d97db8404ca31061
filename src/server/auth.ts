/**
 * Bearer-token auth, on by default as the seed server has it: every route but `/health` (and CORS
 * preflights) needs `Authorization: Bearer <token>`, compared in constant time so response timing
 * does not leak how much of a guess was right.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";
import { ApiError } from "../api/errors.ts";

/** Paths anyone may call: load balancers probe health before they have any token. */
const OPEN_PATHS = new Set(["/health"]);

const encoder = new TextEncoder();

/** A random 64-hex-character token (256 bits), as the seed server generates. */
export function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Compares in time that depends only on the lengths, never on where the first difference is. A
 * length mismatch is not secret (tokens of one server all have the same length).
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

/** Extracts the token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined | null): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

/** Middleware refusing requests without the token with a 401 OpenAI-style error. */
export function bearerAuth(token: string): MiddlewareHandler {
  return async (c, next) => {
    if (OPEN_PATHS.has(c.req.path) || c.req.method === "OPTIONS") return await next();
    const header = c.req.header("authorization");
    const given = bearerToken(header);
    if (given === null) {
      throw new ApiError(
        401,
        header
          ? "Malformed Authorization header: expected 'Bearer <token>'"
          : "Missing bearer token: send 'Authorization: Bearer <token>' (the token is printed on the " +
            "server's stderr and written to its token file)",
        "authentication_error",
        null,
        "invalid_api_key",
      );
    }
    if (!constantTimeEqual(given, token)) {
      throw new ApiError(
        401,
        "Incorrect bearer token provided",
        "authentication_error",
        null,
        "invalid_api_key",
      );
    }
    await next();
  };
}
