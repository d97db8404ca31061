/**
 * Assertions for tests (JSR's @std/assert is unreachable here): node:assert's strict functions under
 * the names Deno tests usually use.
 *
 * @module
 */
import assertNode from "node:assert/strict";

/** Fails unless `value` is truthy. */
export function assert(value: unknown, message?: string): asserts value {
  assertNode.ok(value, message);
}

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assertNode.deepStrictEqual(actual, expected, message);
}

/** Deep strict inequality. */
export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  assertNode.notDeepStrictEqual(actual, expected, message);
}

/** Fails unless `fn` throws (an instance of `errorClass` whose message includes `includes`, when given). */
export function assertThrows(
  fn: () => unknown,
  errorClass?: new (...args: never[]) => Error,
  includes?: string,
): Error {
  try {
    fn();
  } catch (e) {
    checkError(e, errorClass, includes);
    return e as Error;
  }
  throw new Error("expected the function to throw");
}

/** Fails unless the promise rejects (an instance of `errorClass` whose message includes `includes`). */
export async function assertRejects(
  fn: () => Promise<unknown>,
  errorClass?: new (...args: never[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    checkError(e, errorClass, includes);
    return e as Error;
  }
  throw new Error("expected the promise to reject");
}

/** Fails unless |actual - expected| <= tolerance. */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-7,
  message?: string,
): void {
  if (!(Math.abs(actual - expected) <= tolerance)) {
    throw new Error(message ?? `expected ${actual} to be within ${tolerance} of ${expected}`);
  }
}

/** Fails unless `actual` includes `expected`. */
export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  if (!actual.includes(expected)) {
    throw new Error(message ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`);
  }
}

function checkError(e: unknown, errorClass?: new (...args: never[]) => Error, includes?: string): void {
  if (errorClass && !(e instanceof errorClass)) {
    throw new Error(
      `expected ${errorClass.name}, got ${e instanceof Error ? e.name + ": " + e.message : String(e)}`,
    );
  }
  if (includes && !(e instanceof Error && e.message.includes(includes))) {
    throw new Error(
      `expected the error message to include ${JSON.stringify(includes)}, got ${(e as Error)?.message}`,
    );
  }
}
