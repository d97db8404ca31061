/**
 * Turns a Hugging Face model directory (config.json, safetensors weights, optional
 * generation_config.json) into the {@link ModelDescription} the native library loads: normalised
 * dimensions plus, for every tensor hearth needs, its file, byte range, dtype and checked shape.
 *
 * @module
 */

import { resolve } from "node:path";
import { type Checkpoint, expectedLocation, readCheckpoint } from "./checkpoint.ts";
import { readModelConfig } from "./config.ts";
import {
  type GenerationDefaults,
  type ModelConfig,
  type ModelDescription,
  mostCommonDtype,
  type TensorRef,
} from "./description.ts";
import { ModelFormatError } from "./errors.ts";
import { readGenerationDefaults } from "./generation.ts";
import { unsupportedDtypeMessage } from "./safetensors.ts";
import { expectedTensors } from "./tensor_map.ts";

export { DtypeOptionError, parseDtypeOption } from "./dtype_option.ts";

/** Options of {@link describeModel}. */
export interface DescribeOptions {
  /** Read generation_config.json (default true); false gives empty generation defaults. */
  generationConfig?: boolean;
}

/** What {@link describeModel} found. */
export interface DescribedModel {
  description: ModelDescription;
  generation: GenerationDefaults;
  /**
   * Tensors in the checkpoint that hearth does not use (e.g. rotary inv_freq buffers, a tied lm_head,
   * integer buffers), in file order.
   */
  ignoredTensors: string[];
}

/** How many missing tensors a message lists by name before summarising. */
const MAX_LISTED = 8;

/**
 * Describes the model in `dir`.
 *
 * @throws {ModelConfigError} for config.json / generation_config.json problems.
 * @throws {ModelFormatError} when the weights are missing, malformed, lack a required tensor (named,
 *   with the file it should be in) or hold one of the wrong shape (named, with the config values
 *   that imply the expected shape).
 */
export async function describeModel(dir: string, opts: DescribeOptions = {}): Promise<DescribedModel> {
  const abs = resolve(dir);
  const config = await readModelConfig(abs);
  const checkpoint = await readCheckpoint(abs);
  const generation = opts.generationConfig === false ? {} : await readGenerationDefaults(abs);
  const tensors = mapTensors(config, checkpoint);
  const used = new Set(tensors.map((t) => t.name));
  return {
    description: { config, files: checkpoint.files, tensors, storedDtype: mostCommonDtype(tensors) },
    generation,
    ignoredTensors: [...checkpoint.tensors.keys(), ...checkpoint.unsupported.keys()].filter((n) =>
      !used.has(n)
    ),
  };
}

/** Finds and shape-checks each tensor `config` requires. */
export function mapTensors(config: ModelConfig, checkpoint: Checkpoint): TensorRef[] {
  const refs: TensorRef[] = [];
  const missing: string[] = [];
  for (const want of expectedTensors(config)) {
    const found = checkpoint.tensors.get(want.name);
    if (found === undefined) {
      const other = checkpoint.unsupported.get(want.name);
      if (other !== undefined) {
        throw new ModelFormatError(
          unsupportedDtypeMessage(checkpoint.files[other.file], want.name, other.info.dtype),
        );
      }
      missing.push(want.name);
      continue;
    }
    const { info, file } = found;
    if (!sameShape(info.shape, want.shape)) {
      throw new ModelFormatError(
        `${want.name} in ${checkpoint.files[file]} has shape ${fmt(info.shape)}, expected ${
          fmt(want.shape)
        } ` +
          `for ${want.dims}`,
      );
    }
    refs.push({
      name: want.name,
      role: want.role,
      layer: want.layer,
      file,
      offset: info.offset,
      nbytes: info.nbytes,
      dtype: info.dtype,
      shape: [...info.shape],
    });
  }
  if (missing.length > 0) throw missingError(config, checkpoint, missing);
  return refs;
}

function missingError(config: ModelConfig, checkpoint: Checkpoint, missing: string[]): ModelFormatError {
  const listed = missing.slice(0, MAX_LISTED).map((n) =>
    `${n} (expected in ${expectedLocation(checkpoint, n)})`
  );
  const more = missing.length > MAX_LISTED ? `, and ${missing.length - MAX_LISTED} more` : "";
  let hint = "";
  if (missing.includes("lm_head.weight")) {
    hint = "; config.json has tie_word_embeddings false, so lm_head.weight must be stored";
  } else if (missing.every((n) => /self_attn\.[qkv]_proj\.bias$/.test(n))) {
    hint = `; ${config.architecture} has q/k/v biases`;
  } else if (missing.every((n) => /self_attn\.[qk]_norm\.weight$/.test(n))) {
    hint = `; ${config.architecture} has q/k norms`;
  }
  const what = missing.length === 1 ? "tensor is missing" : `${missing.length} tensors are missing`;
  return new ModelFormatError(`${what} for ${config.architecture}: ${listed.join(", ")}${more}${hint}`);
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function fmt(shape: number[]): string {
  return `[${shape.join(", ")}]`;
}
