/**
 * Reads a model directory's config.json into a normalised {@link ModelConfig}, dispatching on
 * `architectures[0]` to the registry in `architectures/`.
 *
 * @module
 */

import { join } from "node:path";
import { findArchitecture } from "./architectures/registry.ts";
import { ConfigReader } from "./config_fields.ts";
import type { ModelConfig } from "./description.ts";
import { ModelConfigError } from "./errors.ts";

/**
 * Reads and normalises `dir/config.json`.
 *
 * @throws {ModelConfigError} naming the file (and key) when it is missing, not JSON, lacks or
 *   mistypes a key, or describes an unsupported architecture or feature.
 */
export async function readModelConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ModelConfigError(`no config.json in ${dir}; a Hugging Face model directory needs one`, {
        cause: e,
      });
    }
    throw e;
  }
  return parseModelConfig(ConfigReader.parse(path, text));
}

/**
 * Normalises an already parsed config.json.
 *
 * @throws {ModelConfigError} as {@link readModelConfig}.
 */
export function parseModelConfig(config: ConfigReader): ModelConfig {
  const architectures = config.stringList("architectures", null);
  if (architectures !== null && architectures.length === 0) {
    throw config.error("architectures", "is empty; it must name the model class, e.g. LlamaForCausalLM");
  }
  const modelType = config.has("model_type") ? config.string("model_type") : null;
  return findArchitecture(config.path, architectures?.[0] ?? null, modelType).normalise(config);
}
