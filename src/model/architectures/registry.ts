/**
 * The architectures hearth runs, keyed by config.json's `architectures[0]`.
 *
 * @module
 */

import { ModelConfigError } from "../errors.ts";
import { llama } from "./llama.ts";
import { mistral } from "./mistral.ts";
import { qwen2 } from "./qwen2.ts";
import { qwen3 } from "./qwen3.ts";
import type { ArchitectureSpec } from "./spec.ts";

export type { ArchitectureSpec } from "./spec.ts";

const SPECS: readonly ArchitectureSpec[] = [llama, mistral, qwen2, qwen3];

/** Names of the supported architectures, e.g. for error messages and `--help`. */
export function supportedArchitectures(): string[] {
  return SPECS.map((s) => s.name);
}

/**
 * The spec for `name` (an `architectures[0]` value), or, when `name` is null, for `modelType`.
 *
 * @param path config.json, for the message.
 * @throws {ModelConfigError} listing the supported architectures when there is no match.
 */
export function findArchitecture(
  path: string,
  name: string | null,
  modelType: string | null,
): ArchitectureSpec {
  const spec = name !== null
    ? SPECS.find((s) => s.name === name)
    : SPECS.find((s) => s.modelType === modelType);
  if (spec !== undefined) return spec;
  const what = name !== null
    ? `architecture ${name}`
    : modelType !== null
    ? `model_type ${modelType} (and no architectures key)`
    : "no architectures or model_type key";
  throw new ModelConfigError(
    `${path}: ${what} is not supported; supported architectures: ${supportedArchitectures().join(", ")}`,
  );
}
