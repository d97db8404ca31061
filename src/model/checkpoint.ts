/**
 * Finds the safetensors weights of a Hugging Face model directory and reads their headers: a single
 * `model.safetensors`, shards listed by `model.safetensors.index.json`, or, failing both, every
 * `*.safetensors` file in the directory. The result maps each tensor name to its file and byte range.
 *
 * @module
 */

import { isAbsolute, join, relative, resolve } from "node:path";
import { ModelFormatError } from "./errors.ts";
import {
  readSafetensorsHeader,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
  type UnsupportedTensorInfo,
} from "./safetensors.ts";

/** Name of a single-file checkpoint. */
export const SINGLE_FILE = "model.safetensors";
/** Name of the shard index of a sharded checkpoint. */
export const INDEX_FILE = "model.safetensors.index.json";

/** One tensor of a checkpoint: which file holds it, and where. */
export interface CheckpointTensor {
  /** Index into {@link Checkpoint.files}. */
  file: number;
  info: SafetensorsTensorInfo;
}

/** How the weights of a directory were found. */
export type CheckpointLayout = "single" | "index" | "files";

/** The weights of a model directory. */
export interface Checkpoint {
  /** Absolute path of the directory. */
  dir: string;
  layout: CheckpointLayout;
  /** Absolute paths of the safetensors files, in a stable order. */
  files: string[];
  tensors: Map<string, CheckpointTensor>;
  /**
   * Tensors of dtypes hearth does not compute with (I64 buffers, F64, FP8, ...). They are an error
   * only if the model needs one, so they are kept apart rather than rejected when the headers are read.
   */
  unsupported: Map<string, { file: number; info: UnsupportedTensorInfo }>;
  /** With the index layout: tensor name → shard file name, as the index lists it. */
  weightMap?: Map<string, string>;
}

/**
 * Locates and reads the safetensors headers of the model in `dir`. `model.safetensors` wins over an
 * index (as in transformers); with neither, all `*.safetensors` files are read and must not share a
 * tensor name.
 *
 * @throws {ModelFormatError} when the directory has no weights, the index is malformed or names a
 *   missing shard or a tensor its shard lacks, two files hold the same tensor, or a header is bad.
 */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const abs = resolve(dir);
  const names = await listDir(abs);
  if (names.has(SINGLE_FILE)) return await fromFiles(abs, "single", [SINGLE_FILE]);
  if (names.has(INDEX_FILE)) return await fromIndex(abs);
  const shards = [...names].filter((n) => n.endsWith(".safetensors")).sort();
  if (shards.length > 0) return await fromFiles(abs, "files", shards);
  const other = [...names].filter((n) => /\.(bin|pt|pth|gguf)$/.test(n)).sort();
  const hint = other.length > 0
    ? ` (found ${
      other.join(", ")
    }: only safetensors checkpoints are read; convert the weights to safetensors)`
    : "";
  throw new ModelFormatError(
    `no ${SINGLE_FILE} or ${INDEX_FILE} (nor any *.safetensors file) in ${abs}${hint}`,
  );
}

/**
 * Says where a tensor missing from the checkpoint should have been, for error messages: the single
 * file, the shard the index assigns it to, or the index itself when it does not list the tensor.
 */
export function expectedLocation(checkpoint: Checkpoint, name: string): string {
  switch (checkpoint.layout) {
    case "single":
      return checkpoint.files[0];
    case "index": {
      const shard = checkpoint.weightMap?.get(name);
      return shard !== undefined
        ? join(checkpoint.dir, shard)
        : `${join(checkpoint.dir, INDEX_FILE)} (its weight_map does not list it)`;
    }
    case "files":
      return `any of ${checkpoint.files.join(", ")}`;
  }
}

async function listDir(dir: string): Promise<Set<string>> {
  const names = new Set<string>();
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile || entry.isSymlink) names.add(entry.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ModelFormatError(`model directory ${dir} does not exist`, { cause: e });
    }
    if (e instanceof Error && /not a directory/i.test(e.message)) {
      throw new ModelFormatError(`${dir} is not a directory; give the model's directory`, { cause: e });
    }
    throw e;
  }
  return names;
}

async function fromFiles(dir: string, layout: CheckpointLayout, names: string[]): Promise<Checkpoint> {
  const files = names.map((n) => join(dir, n));
  const headers = await readHeaders(files);
  const tensors = new Map<string, CheckpointTensor>();
  const unsupported = new Map<string, { file: number; info: UnsupportedTensorInfo }>();
  const fileOf = new Map<string, number>();
  headers.forEach((header, file) => {
    for (const name of [...header.tensors.keys(), ...header.unsupported.keys()]) {
      const prior = fileOf.get(name);
      if (prior !== undefined) {
        throw new ModelFormatError(
          `tensor ${name} is in both ${files[prior]} and ${files[file]}; ` +
            `without ${INDEX_FILE} it is unclear which to use`,
        );
      }
      fileOf.set(name, file);
    }
    for (const [name, info] of header.tensors) tensors.set(name, { file, info });
    for (const [name, info] of header.unsupported) unsupported.set(name, { file, info });
  });
  return { dir, layout, files, tensors, unsupported };
}

function readHeaders(files: string[]): Promise<SafetensorsHeader[]> {
  return Promise.all(files.map((f) => readSafetensorsHeader(f, { setAsideUnsupported: true })));
}

async function fromIndex(dir: string): Promise<Checkpoint> {
  const indexPath = join(dir, INDEX_FILE);
  const weightMap = parseIndex(indexPath, await Deno.readTextFile(indexPath), dir);

  // Shards in order of first mention, so file indices follow the index.
  const shardNames = [...new Set(weightMap.values())];
  const files = shardNames.map((n) => join(dir, n));
  await Promise.all(shardNames.map(async (shard, i) => {
    try {
      const info = await Deno.stat(files[i]);
      if (info.isFile) return;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const users = [...weightMap].filter(([, s]) => s === shard).map(([t]) => t);
    const others = users.length > 1 ? ` and ${users.length - 1} other tensors` : "";
    throw new ModelFormatError(
      `${indexPath}: shard ${shard} (listed for ${users[0]}${others}) does not exist in ${dir}`,
    );
  }));

  const headers = await readHeaders(files);
  const fileOf = new Map(shardNames.map((n, i) => [n, i]));
  const tensors = new Map<string, CheckpointTensor>();
  const unsupported = new Map<string, { file: number; info: UnsupportedTensorInfo }>();
  for (const [name, shard] of weightMap) {
    const file = fileOf.get(shard)!;
    const info = headers[file].tensors.get(name);
    const other = headers[file].unsupported.get(name);
    if (info !== undefined) {
      tensors.set(name, { file, info });
    } else if (other !== undefined) {
      unsupported.set(name, { file, info: other });
    } else {
      throw new ModelFormatError(
        `${indexPath} lists tensor ${name} in ${files[file]}, but that file has no ${name}`,
      );
    }
  }
  return { dir, layout: "index", files, tensors, unsupported, weightMap };
}

/** Parses the index's `weight_map`, refusing shard names that would leave the model directory. */
function parseIndex(indexPath: string, text: string, dir: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`${indexPath} is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ModelFormatError(`${indexPath}: expected a JSON object with a weight_map`);
  }
  const weightMap = (json as Record<string, unknown>).weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelFormatError(`${indexPath}: weight_map must be an object of tensor name → shard file`);
  }
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || shard === "") {
      throw new ModelFormatError(
        `${indexPath}: weight_map.${name} must be a shard file name, got ${JSON.stringify(shard)}`,
      );
    }
    const rel = relative(dir, resolve(dir, shard));
    if (isAbsolute(shard) || rel.startsWith("..") || rel === "") {
      throw new ModelFormatError(
        `${indexPath}: weight_map.${name} names ${shard}, which is outside the model directory`,
      );
    }
    out.set(name, shard);
  }
  if (out.size === 0) throw new ModelFormatError(`${indexPath}: weight_map is empty`);
  return out;
}
