/**
 * Writes `.safetensors` files: for tests (small hand-made checkpoints, including deliberately odd
 * dtypes) and for benchmark models with random weights. Tensor data may be given as chunks from a
 * (async) iterable, so a 500 MB file is written without ever holding all of it in memory.
 *
 * @module
 */

import { SAFETENSORS_DTYPE_BITS } from "./safetensors.ts";
import { chunksOf, type TensorBytes, writeAll } from "./tensor_bytes.ts";

/** Bytes per element of each safetensors dtype the writer knows (sub-byte F4/F6 are left out). */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(SAFETENSORS_DTYPE_BITS).filter(([, bits]) => bits % 8 === 0).map((
    [d, bits],
  ) => [d, bits / 8]),
);

/** One tensor to write. */
export interface TensorToWrite {
  /** safetensors dtype name ("F32", "BF16", "I8", ...); hearth's "f32"/"f16"/"bf16" are accepted too. */
  dtype: string;
  shape: number[];
  /** Exactly product(shape) × dtype size bytes, little-endian. */
  data: TensorBytes;
}

/** Options of {@link writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** Written as `__metadata__`. */
  metadata?: Record<string, string>;
}

/**
 * Builds the 8-byte length prefix and JSON header for tensors laid out back to back in the given
 * order. The header is padded with spaces to a multiple of 8 bytes, as the reference writer does, so
 * the data starts 8-byte aligned.
 *
 * @returns the bytes to put before the data, and each tensor's byte count.
 */
export function encodeSafetensorsHeader(
  tensors: Iterable<[string, { dtype: string; shape: number[] }]>,
  metadata?: Record<string, string>,
): { prefix: Uint8Array; sizes: number[] } {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const sizes: number[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const dtype = t.dtype.toUpperCase();
    const elementBytes = SAFETENSORS_DTYPE_BYTES[dtype];
    if (elementBytes === undefined) throw new Error(`writeSafetensors: unknown dtype ${t.dtype} for ${name}`);
    const nbytes = t.shape.reduce((a, b) => a * b, 1) * elementBytes;
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    sizes.push(nbytes);
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const body = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8 + body.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(body.length), true);
  prefix.set(body, 8);
  return { prefix, sizes };
}

/**
 * Writes a safetensors file at `path` (replacing any file there), tensors in the given order.
 *
 * @throws {Error} when a dtype is unknown or a tensor's data is not exactly its expected size.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const { prefix, sizes } = encodeSafetensorsHeader(entries, options.metadata);
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  await writeAll(file, prefix);
  for (let i = 0; i < entries.length; i++) {
    const [name, tensor] = entries[i];
    let written = 0;
    for await (const chunk of chunksOf(tensor.data)) {
      written += chunk.length;
      if (written > sizes[i]) break;
      await writeAll(file, chunk);
    }
    if (written !== sizes[i]) {
      throw new Error(
        `writeSafetensors: tensor ${name} got ${written > sizes[i] ? `more than ${sizes[i]}` : written} ` +
          `bytes of data, ` +
          `its shape ${JSON.stringify(tensor.shape)} of ${tensor.dtype} needs ${sizes[i]}`,
      );
    }
  }
}
