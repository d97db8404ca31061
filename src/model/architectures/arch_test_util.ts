/**
 * Test support for the architecture normalisers: a config reader over a tiny config with overrides,
 * and an assertion on ModelConfigError messages. Not a test itself.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ConfigReader } from "../config_fields.ts";
import { ModelConfigError } from "../errors.ts";
import { tinyConfig } from "../test_util.ts";

/** A reader over the tiny config of `architecture` with `overrides` (undefined removes a key). */
export function configOf(architecture: string, overrides: Record<string, unknown> = {}): ConfigReader {
  const json: Record<string, unknown> = { ...tinyConfig(architecture), ...overrides };
  for (const [k, v] of Object.entries(json)) if (v === undefined) delete json[k];
  return new ConfigReader("/m/config.json", json);
}

/** Asserts `fn` throws a ModelConfigError whose message contains the file name and every part. */
export function assertConfigError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelConfigError, `expected ModelConfigError, got ${e}`);
    for (const p of ["/m/config.json", ...parts]) {
      assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    }
    return true;
  });
}
