/**
 * The shape of one entry of the architecture registry.
 *
 * @module
 */

import type { ConfigReader } from "../config_fields.ts";
import type { ModelConfig } from "../description.ts";

/** One supported architecture: how to recognise it and how to normalise its config.json. */
export interface ArchitectureSpec {
  /** `architectures[0]` in config.json, e.g. `LlamaForCausalLM`. */
  name: string;
  /** `model_type` in config.json, used when `architectures` is absent. */
  modelType: string;
  /** Reads config.json into hearth's dimensions, or throws a ModelConfigError naming the key. */
  normalise(config: ConfigReader): ModelConfig;
}
