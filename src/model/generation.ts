/**
 * Reads a model's optional generation_config.json: the sampling defaults and extra stop ids its
 * authors chose (e.g. Llama 3 Instruct lists <|eot_id|> there, not in config.json).
 *
 * @module
 */

import { join } from "node:path";
import { ConfigReader } from "./config_fields.ts";
import type { GenerationDefaults } from "./description.ts";

/**
 * Reads `dir/generation_config.json`; a missing file gives `{}`.
 *
 * @throws {ModelConfigError} naming the file (and key) when it is not JSON or a value is mistyped or
 *   out of range.
 */
export async function readGenerationDefaults(dir: string): Promise<GenerationDefaults> {
  const path = join(dir, "generation_config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
  return parseGenerationDefaults(ConfigReader.parse(path, text));
}

/**
 * Converts a parsed generation_config.json. Absent and null keys are left out of the result.
 *
 * @throws {ModelConfigError} as {@link readGenerationDefaults}.
 */
export function parseGenerationDefaults(g: ConfigReader): GenerationDefaults {
  const out: GenerationDefaults = {};
  if (g.has("temperature")) {
    out.temperature = g.number("temperature");
    if (out.temperature < 0) throw g.error("temperature", `must be >= 0, got ${out.temperature}`);
  }
  if (g.has("top_p")) {
    out.topP = g.positiveNumber("top_p");
    if (out.topP > 1) throw g.error("top_p", `must be in (0, 1], got ${out.topP}`);
  }
  if (g.has("top_k")) out.topK = g.optionalNonNegativeInt("top_k", null)!;
  if (g.has("min_p")) {
    out.minP = g.number("min_p");
    if (out.minP < 0 || out.minP > 1) throw g.error("min_p", `must be in [0, 1], got ${out.minP}`);
  }
  if (g.has("repetition_penalty")) out.repetitionPenalty = g.positiveNumber("repetition_penalty");
  if (g.has("max_new_tokens")) out.maxNewTokens = g.positiveInt("max_new_tokens");
  if (g.has("do_sample")) out.doSample = g.bool("do_sample");
  if (g.has("eos_token_id")) out.eosTokenIds = g.tokenIds("eos_token_id", null);
  if (g.has("bos_token_id")) out.bosTokenId = g.tokenId("bos_token_id", null)!;
  if (g.has("pad_token_id")) out.padTokenId = g.tokenId("pad_token_id", null)!;
  return out;
}
