/**
 * The client's YAML config file: the flags' kebab-case keys (`max-tokens: 64`, `stop: ["\n"]`),
 * checked against the flag specs so a mistyped key or a wrong type is an error naming it.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";
import { FlagError, type FlagSpec } from "../flags.ts";

/** Checks one value read from the file against its flag's kind; returns it normalised. */
export function checkConfigValue(key: string, spec: FlagSpec, value: unknown, source: string): unknown {
  const fail = (expected: string): never => {
    throw new FlagError(`${source}: '${key}' expects ${expected}, got ${JSON.stringify(value)}`);
  };
  switch (spec.kind) {
    case "string":
      if (typeof value === "string") return value;
      // YAML reads `model: 7b` as a string but `system: 42` as a number; take scalars as text.
      if (typeof value === "number" || typeof value === "boolean") return String(value);
      return fail("a string");
    case "int":
      return Number.isInteger(value) ? value : fail("an integer");
    case "number":
      return typeof value === "number" && Number.isFinite(value) ? value : fail("a number");
    case "bool":
      return typeof value === "boolean" ? value : fail("true or false");
    case "list":
    case "append":
      if (typeof value === "string") return [value];
      if (Array.isArray(value) && value.every((x) => typeof x === "string")) return value;
      return fail("a string or a list of strings");
    case "json":
      return value;
  }
}

/** Parses the text of a config file into flag values (only the keys it sets). */
export function parseClientConfig(
  text: string,
  specs: Record<string, FlagSpec>,
  source: string,
): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new FlagError(`${source}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new FlagError(`${source}: expected a mapping of option names to values`);
  }
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const spec = specs[key];
    if (!spec || key === "config") {
      throw new FlagError(`${source}: unknown key '${key}' (keys are the flags' names, e.g. max-tokens)`);
    }
    if (value === null) continue;
    values[key] = checkConfigValue(key, spec, value, source);
  }
  return values;
}

/** Reads and parses a config file. */
export async function loadClientConfig(
  path: string,
  specs: Record<string, FlagSpec>,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new FlagError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  return parseClientConfig(text, specs, path);
}
