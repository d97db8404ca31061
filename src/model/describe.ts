/**
 * One entry point for "what is this model?": a Hugging Face directory or a GGUF file, to the model
 * description the engine builds from, its generation defaults, and (for GGUF, which carries them)
 * the tokenizer with its chat template.
 *
 * @module
 */
import type { GenerationDefaults, ModelDescription } from "./description.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** What {@link describeModelPath} found. */
export interface DescribedModel {
  description: ModelDescription;
  generation: GenerationDefaults;
  /** The file's own tokenizer (GGUF); null for a directory, whose tokenizer.json the caller loads. */
  tokenizer: Tokenizer | null;
}

/** True when `path` names a GGUF file rather than a model directory. */
export async function isGgufPath(path: string): Promise<boolean> {
  if (path.toLowerCase().endsWith(".gguf")) return true;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return false;
    using file = await Deno.open(path);
    const magic = new Uint8Array(4);
    return (await file.read(magic)) === 4 && new TextDecoder().decode(magic) === "GGUF";
  } catch {
    return false;
  }
}

/** Describes a model directory (Hugging Face layout) or a .gguf file. */
export async function describeModelPath(
  path: string,
  opts: { tokenizer?: boolean } = {},
): Promise<DescribedModel> {
  if (await isGgufPath(path)) {
    const { describeGguf } = await import("./gguf_model.ts");
    const g = await describeGguf(path, { tokenizer: opts.tokenizer ?? true });
    return { description: g.description, generation: g.generation, tokenizer: g.tokenizer };
  }
  const { describeModel } = await import("./loader.ts");
  const { description, generation } = await describeModel(path);
  return { description, generation, tokenizer: null };
}
