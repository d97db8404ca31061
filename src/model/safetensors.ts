/**
 * Reads the header of a `.safetensors` file: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON
 * naming each tensor's dtype, shape and byte range, then the raw data. Only the header is read — the
 * data is mapped later by the native library — so every bound is checked here against the file size,
 * which is how a truncated download shows up before anything is mapped.
 *
 * @module
 */

import type { DType } from "./description.ts";
import { ModelFormatError } from "./errors.ts";

/** Headers larger than this are taken as corruption rather than read into memory. */
export const MAX_HEADER_BYTES = 100_000_000;

/** safetensors dtype names hearth computes with, and the {@link DType} each becomes. */
export const SUPPORTED_SAFETENSORS_DTYPES: Readonly<Record<string, DType>> = {
  F32: "f32",
  F16: "f16",
  BF16: "bf16",
};

/**
 * Bits per element of every dtype the safetensors format defines. Those outside
 * {@link SUPPORTED_SAFETENSORS_DTYPES} get "unsupported dtype" rather than "unknown dtype": the file
 * is fine, hearth just does not compute with them.
 */
export const SAFETENSORS_DTYPE_BITS: Readonly<Record<string, number>> = {
  F64: 64,
  F32: 32,
  F16: 16,
  BF16: 16,
  F8_E4M3: 8,
  F8_E5M2: 8,
  F8_E8M0: 8,
  F6_E2M3: 6,
  F6_E3M2: 6,
  F4: 4,
  I64: 64,
  I32: 32,
  I16: 16,
  I8: 8,
  U64: 64,
  U32: 32,
  U16: 16,
  U8: 8,
  BOOL: 8,
  C64: 64,
};

/** Options of {@link readSafetensorsHeader}. */
export interface ReadSafetensorsOptions {
  /**
   * Put tensors whose dtype hearth does not compute with in {@link SafetensorsHeader.unsupported}
   * instead of failing, so a checkpoint with an unused integer buffer still loads. Their byte ranges
   * are still checked. Default false.
   */
  setAsideUnsupported?: boolean;
}

/** A tensor of a dtype hearth does not compute with, set aside by `setAsideUnsupported`. */
export interface UnsupportedTensorInfo {
  name: string;
  /** The safetensors dtype name, e.g. `I64`. */
  dtype: string;
  shape: number[];
  offset: number;
  nbytes: number;
}

/** The message for a tensor of a dtype hearth does not compute with. */
export function unsupportedDtypeMessage(path: string, name: string, dtype: string): string {
  const kind = dtype in SAFETENSORS_DTYPE_BITS ? "unsupported" : "unknown";
  const supported = Object.keys(SUPPORTED_SAFETENSORS_DTYPES).join(", ");
  return `${kind} dtype ${dtype} for tensor ${name} in file ${path}; supported: ${supported}`;
}

/** One tensor of a safetensors file. */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte offset of the data in the file: 8 + N + data_offsets[0]. */
  offset: number;
  nbytes: number;
}

/** The parsed header of one safetensors file. */
export interface SafetensorsHeader {
  /** The path as given to {@link readSafetensorsHeader}. */
  path: string;
  fileSize: number;
  /** N, the length of the JSON header. */
  headerSize: number;
  /** 8 + N: where data_offsets count from. */
  dataStart: number;
  /** Tensors in header order. */
  tensors: Map<string, SafetensorsTensorInfo>;
  /** Tensors of other dtypes (empty unless `setAsideUnsupported`). */
  unsupported: Map<string, UnsupportedTensorInfo>;
  /** The optional `__metadata__` string map (e.g. `{format: "pt"}`). */
  metadata: Record<string, string>;
}

/**
 * Reads and validates the header of the safetensors file at `path` without reading its data.
 *
 * @throws {ModelFormatError} naming the file and the tensor or key when the file is short, the header
 *   is not a JSON object, an entry is malformed, a dtype is not F32/F16/BF16, or a byte range runs past
 *   the end of the file.
 */
export async function readSafetensorsHeader(
  path: string,
  options: ReadSafetensorsOptions = {},
): Promise<SafetensorsHeader> {
  using file = await Deno.open(path, { read: true });
  const fileSize = (await file.stat()).size;
  if (fileSize < 8) {
    throw new ModelFormatError(
      `${path}: file is ${fileSize} bytes, shorter than the 8-byte safetensors header length; ` +
        `the file is truncated or not a safetensors file`,
    );
  }
  const prefix = new Uint8Array(8);
  await readExactly(file, prefix, path);
  const declared = new DataView(prefix.buffer).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new ModelFormatError(
      `${path}: safetensors header length ${declared} is larger than ${MAX_HEADER_BYTES} bytes; ` +
        `the file is corrupt or not a safetensors file`,
    );
  }
  const headerSize = Number(declared);
  if (8 + headerSize > fileSize) {
    throw new ModelFormatError(
      `${path}: safetensors header length ${headerSize} runs past the end of the file ` +
        `(${fileSize} bytes); the file is truncated or not a safetensors file`,
    );
  }
  const headerBytes = new Uint8Array(headerSize);
  await readExactly(file, headerBytes, path);
  return parseSafetensorsHeader(path, headerBytes, fileSize, options);
}

/**
 * Validates a safetensors JSON header already read from a file of `fileSize` bytes. Split from
 * {@link readSafetensorsHeader} so the checks need no file.
 *
 * @throws {ModelFormatError} as {@link readSafetensorsHeader}.
 */
export function parseSafetensorsHeader(
  path: string,
  headerBytes: Uint8Array,
  fileSize: number,
  options: ReadSafetensorsOptions = {},
): SafetensorsHeader {
  const headerSize = headerBytes.length;
  const dataStart = 8 + headerSize;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch (e) {
    throw new ModelFormatError(`${path}: safetensors header is not valid UTF-8`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(
      `${path}: safetensors header is not valid JSON (${(e as Error).message})`,
      { cause: e },
    );
  }
  if (!isPlainObject(json)) {
    throw new ModelFormatError(`${path}: safetensors header is not a JSON object`);
  }

  const tensors = new Map<string, SafetensorsTensorInfo>();
  const unsupported = new Map<string, UnsupportedTensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json)) {
    if (name === "__metadata__") {
      metadata = parseMetadata(path, entry);
      continue;
    }
    const info = parseEntry(path, name, entry, dataStart, fileSize);
    const dtype = SUPPORTED_SAFETENSORS_DTYPES[info.dtype];
    if (dtype !== undefined) {
      tensors.set(name, { ...info, dtype });
    } else if (options.setAsideUnsupported) {
      unsupported.set(name, info);
    } else {
      throw new ModelFormatError(unsupportedDtypeMessage(path, name, info.dtype));
    }
  }
  return { path, fileSize, headerSize, dataStart, tensors, unsupported, metadata };
}

function parseMetadata(path: string, entry: unknown): Record<string, string> {
  if (entry === null) return {};
  if (!isPlainObject(entry)) {
    throw new ModelFormatError(`${path}: __metadata__ must be an object of strings`);
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== "string") {
      throw new ModelFormatError(
        `${path}: __metadata__.${key} must be a string, got ${JSON.stringify(value)}`,
      );
    }
    out[key] = value;
  }
  return out;
}

function parseEntry(
  path: string,
  name: string,
  entry: unknown,
  dataStart: number,
  fileSize: number,
): UnsupportedTensorInfo {
  const where = `tensor ${name} in ${path}`;
  if (!isPlainObject(entry)) {
    throw new ModelFormatError(`${where}: header entry must be an object with dtype, shape and data_offsets`);
  }
  for (const key of ["dtype", "shape", "data_offsets"]) {
    if (!(key in entry)) throw new ModelFormatError(`${where}: header entry has no ${key}`);
  }
  const { dtype: rawDtype, shape: rawShape, data_offsets: rawOffsets } = entry;

  if (typeof rawDtype !== "string") {
    throw new ModelFormatError(`${where}: dtype must be a string, got ${JSON.stringify(rawDtype)}`);
  }

  if (!Array.isArray(rawShape)) {
    throw new ModelFormatError(`${where}: shape must be an array, got ${JSON.stringify(rawShape)}`);
  }
  let elements = 1;
  for (const dim of rawShape) {
    if (typeof dim !== "number" || !Number.isSafeInteger(dim) || dim < 0) {
      throw new ModelFormatError(
        `${where}: shape ${JSON.stringify(rawShape)} has ${JSON.stringify(dim)}; ` +
          `dimensions must be non-negative integers`,
      );
    }
    elements *= dim;
  }
  const shape = rawShape as number[];

  if (
    !Array.isArray(rawOffsets) || rawOffsets.length !== 2 ||
    !rawOffsets.every((v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0)
  ) {
    const got = JSON.stringify(rawOffsets);
    throw new ModelFormatError(
      `${where}: data_offsets must be [begin, end] of non-negative integers, got ${got}`,
    );
  }
  const [begin, end] = rawOffsets as [number, number];
  if (begin > end) {
    throw new ModelFormatError(`${where}: data_offsets [${begin}, ${end}] has begin after end`);
  }
  // Sub-byte dtypes (F4, F6) pack elements; an unknown dtype's size cannot be checked at all.
  const bits = SAFETENSORS_DTYPE_BITS[rawDtype];
  const expected = bits === undefined ? end - begin : Math.ceil((elements * bits) / 8);
  if (bits !== undefined && !Number.isSafeInteger(elements * bits)) {
    throw new ModelFormatError(`${where}: shape ${JSON.stringify(shape)} is too large`);
  }
  if (end - begin !== expected) {
    throw new ModelFormatError(
      `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape ` +
        `${JSON.stringify(shape)} of ${rawDtype} needs ${expected}`,
    );
  }
  if (dataStart + end > fileSize) {
    throw new ModelFormatError(
      `${where}: data_offsets [${begin}, ${end}] (bytes ${dataStart + begin}..${dataStart + end} of the ` +
        `file) runs past the end of the file (${fileSize} bytes); the file is probably truncated`,
    );
  }
  return { name, dtype: rawDtype, shape: [...shape], offset: dataStart + begin, nbytes: expected };
}

/** Fills `buf` from the file's current position; a short file is a format error, not a partial read. */
async function readExactly(file: Deno.FsFile, buf: Uint8Array, path: string): Promise<void> {
  let filled = 0;
  while (filled < buf.length) {
    const n = await file.read(buf.subarray(filled));
    if (n === null) {
      throw new ModelFormatError(`${path}: file ended while reading the safetensors header`);
    }
    filled += n;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
