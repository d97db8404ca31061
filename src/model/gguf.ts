/**
 * Reads the header of a GGUF file (versions 2 and 3): the metadata key/value pairs and the tensor
 * table, without reading any tensor data — the native library maps that later.
 *
 * Layout (all little-endian): magic `GGUF`; u32 version; u64 tensor count; u64 metadata count; the
 * metadata entries (string key, u32 value type, value); the tensor infos (string name, u32 n_dims,
 * u64 dims innermost first, u32 ggml type, u64 offset relative to the data section); padding up to
 * the next multiple of `general.alignment` (default 32); the data section. A string is a u64 byte
 * length and that many UTF-8 bytes; an array is a u32 element type, a u64 count and the elements.
 *
 * The file is read incrementally through a growing buffer, so a header holding a 150k-entry
 * vocabulary costs a few MB, never the file. Every length and count is checked against the bytes the
 * file still has before it is trusted, so a corrupt or cut file gives a {@link ModelFormatError}
 * naming the file, the byte and the field rather than a huge allocation or a garbage model.
 *
 * @module
 */

import { ModelFormatError } from "./errors.ts";

/** The 4 bytes a GGUF file starts with. */
export const GGUF_MAGIC = "GGUF";

/** GGUF versions this reader understands. */
export const SUPPORTED_GGUF_VERSIONS: readonly number[] = [2, 3];

/** Alignment of the data section and of every tensor when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value type codes. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** A metadata value type code. */
export type GgufValueTypeCode = (typeof GgufValueType)[keyof typeof GgufValueType];

/** Lower-case names of the value types, as messages print them (`u32`, `string`, ...). */
export const GGUF_VALUE_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: "u8",
  1: "i8",
  2: "u16",
  3: "i16",
  4: "u32",
  5: "i32",
  6: "f32",
  7: "bool",
  8: "string",
  9: "array",
  10: "u64",
  11: "i64",
  12: "f64",
};

/** Byte size of each fixed-size value type. */
const SCALAR_BYTES: Readonly<Record<number, number>> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};

/** Storage layout of a ggml tensor type: `blockSize` elements take `typeSize` bytes. */
export interface GgmlTypeInfo {
  /** ggml's name, e.g. `Q4_K`. */
  name: string;
  blockSize: number;
  typeSize: number;
}

/**
 * Every ggml tensor type a GGUF file may hold, by number (gaps are types ggml removed). hearth
 * computes with only some of them (see gguf_model.ts); the others are still sized here so their
 * tensors' byte ranges can be checked.
 */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map<number, GgmlTypeInfo>([
  [0, { name: "F32", blockSize: 1, typeSize: 4 }],
  [1, { name: "F16", blockSize: 1, typeSize: 2 }],
  [2, { name: "Q4_0", blockSize: 32, typeSize: 18 }],
  [3, { name: "Q4_1", blockSize: 32, typeSize: 20 }],
  [6, { name: "Q5_0", blockSize: 32, typeSize: 22 }],
  [7, { name: "Q5_1", blockSize: 32, typeSize: 24 }],
  [8, { name: "Q8_0", blockSize: 32, typeSize: 34 }],
  [9, { name: "Q8_1", blockSize: 32, typeSize: 36 }],
  [10, { name: "Q2_K", blockSize: 256, typeSize: 84 }],
  [11, { name: "Q3_K", blockSize: 256, typeSize: 110 }],
  [12, { name: "Q4_K", blockSize: 256, typeSize: 144 }],
  [13, { name: "Q5_K", blockSize: 256, typeSize: 176 }],
  [14, { name: "Q6_K", blockSize: 256, typeSize: 210 }],
  [15, { name: "Q8_K", blockSize: 256, typeSize: 292 }],
  [16, { name: "IQ2_XXS", blockSize: 256, typeSize: 66 }],
  [17, { name: "IQ2_XS", blockSize: 256, typeSize: 74 }],
  [18, { name: "IQ3_XXS", blockSize: 256, typeSize: 98 }],
  [19, { name: "IQ1_S", blockSize: 256, typeSize: 50 }],
  [20, { name: "IQ4_NL", blockSize: 32, typeSize: 18 }],
  [21, { name: "IQ3_S", blockSize: 256, typeSize: 110 }],
  [22, { name: "IQ2_S", blockSize: 256, typeSize: 82 }],
  [23, { name: "IQ4_XS", blockSize: 256, typeSize: 136 }],
  [24, { name: "I8", blockSize: 1, typeSize: 1 }],
  [25, { name: "I16", blockSize: 1, typeSize: 2 }],
  [26, { name: "I32", blockSize: 1, typeSize: 4 }],
  [27, { name: "I64", blockSize: 1, typeSize: 8 }],
  [28, { name: "F64", blockSize: 1, typeSize: 8 }],
  [29, { name: "IQ1_M", blockSize: 256, typeSize: 56 }],
  [30, { name: "BF16", blockSize: 1, typeSize: 2 }],
  [34, { name: "TQ1_0", blockSize: 256, typeSize: 54 }],
  [35, { name: "TQ2_0", blockSize: 256, typeSize: 66 }],
  [39, { name: "MXFP4", blockSize: 32, typeSize: 17 }],
]);

/** ggml type numbers by name (`GGML_TYPE.Q4_K` is 12). */
export const GGML_TYPE: Readonly<Record<string, number>> = Object.fromEntries(
  [...GGML_TYPES].map(([code, info]) => [info.name, code]),
);

/** A decoded metadata scalar. u64/i64 values are numbers when exact, bigints beyond 2^53. */
export type GgufScalar = number | bigint | boolean | string;

/** A decoded metadata array: numeric arrays as typed arrays, strings and bools as JS arrays. */
export type GgufArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | string[]
  | boolean[]
  | GgufArray[];

/** A decoded metadata value. */
export type GgufValue = GgufScalar | GgufArray;

/** The stored type of a metadata value: `elementType` is set for arrays. */
export interface GgufValueKind {
  type: number;
  elementType?: number;
}

/** One entry of the tensor table. */
export interface GgufTensorInfo {
  name: string;
  /** Dimensions as stored: `dims[0]` (ne0) is the innermost, contiguous one. */
  dims: number[];
  /** ggml type number. */
  type: number;
  /** ggml type name (`Q4_1`, `F32`, ...). */
  typeName: string;
  /** Offset relative to the data section, as stored. */
  relativeOffset: number;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  nbytes: number;
  nElements: number;
}

/** The parsed header of one GGUF file. */
export interface GgufHeader {
  /** The path as given to {@link readGgufHeader}. */
  path: string;
  fileSize: number;
  version: number;
  /** `general.alignment`, or 32. */
  alignment: number;
  metadata: Map<string, GgufValue>;
  /** The stored type of each metadata value (for strict readers and messages). */
  metadataTypes: Map<string, GgufValueKind>;
  /** Tensors in table order. */
  tensors: GgufTensorInfo[];
  tensorsByName: Map<string, GgufTensorInfo>;
  /** Absolute offset of the data section. */
  dataOffset: number;
}

/** Bytes read from the file at a time. */
const CHUNK_BYTES = 1 << 20;

/** Smallest possible metadata entry: empty key (8), type (4), a 1-byte value. */
const MIN_KV_BYTES = 13;
/** Smallest possible tensor info: empty name (8), n_dims (4), one dim (8), type (4), offset (8). */
const MIN_TENSOR_INFO_BYTES = 32;
/** Most dimensions a ggml tensor has. */
const MAX_DIMS = 4;

const TWO_53 = 2n ** 53n;
/** Counts and lengths beyond this that do not fit in the file are reported as corruption, not truncation. */
const ABSURD_COUNT = 2n ** 32n;
const TWO_63 = 2n ** 63n;

/** Sequential reader of the header bytes with bounds checks against the file size. */
class HeaderReader {
  readonly #file: Deno.FsFile;
  readonly #path: string;
  readonly fileSize: number;
  #buf = new Uint8Array(CHUNK_BYTES);
  #view = new DataView(this.#buf.buffer);
  /** File position of `#buf[0]`. */
  #start = 0;
  /** Valid bytes in `#buf`. */
  #len = 0;
  /** File position of the cursor. */
  pos = 0;
  readonly #strict = new TextDecoder("utf-8", { fatal: true });
  readonly #lenient = new TextDecoder("utf-8");

  constructor(file: Deno.FsFile, path: string, fileSize: number) {
    this.#file = file;
    this.#path = path;
    this.fileSize = fileSize;
  }

  /** Bytes left in the file after the cursor. */
  get remaining(): number {
    return this.fileSize - this.pos;
  }

  error(message: string): ModelFormatError {
    return new ModelFormatError(`${this.#path}: ${message}`);
  }

  /** Makes `n` bytes at the cursor available; returns their index in the buffer. */
  async #need(n: number, what: string): Promise<number> {
    if (n > this.remaining) {
      throw this.error(
        `truncated at byte ${this.fileSize} while reading ${what} (needs ${n} bytes at byte ${this.pos})`,
      );
    }
    let at = this.pos - this.#start;
    if (at + n <= this.#len) return at;
    // Keep the unread tail, growing the buffer when one value is bigger than it.
    const tail = this.#buf.subarray(at, this.#len);
    const size = Math.max(this.#buf.length, n + CHUNK_BYTES);
    const buf = size === this.#buf.length ? this.#buf : new Uint8Array(size);
    buf.set(tail, 0);
    this.#buf = buf;
    this.#view = new DataView(buf.buffer);
    this.#start = this.pos;
    this.#len = tail.length;
    at = 0;
    while (this.#len < n) {
      const want = Math.min(buf.length - this.#len, this.fileSize - (this.#start + this.#len));
      const got = await this.#file.read(buf.subarray(this.#len, this.#len + want));
      if (got === null || got === 0) {
        throw this.error(
          `truncated at byte ${this.#start + this.#len} while reading ${what} ` +
            `(the file shrank while being read)`,
        );
      }
      this.#len += got;
    }
    return at;
  }

  async bytes(n: number, what: string): Promise<Uint8Array> {
    const at = await this.#need(n, what);
    this.pos += n;
    return this.#buf.subarray(at, at + n);
  }

  async u32(what: string): Promise<number> {
    const at = await this.#need(4, what);
    this.pos += 4;
    return this.#view.getUint32(at, true);
  }

  async u64(what: string): Promise<bigint> {
    const at = await this.#need(8, what);
    this.pos += 8;
    return this.#view.getBigUint64(at, true);
  }

  /** A u64 count or length of items of at least `minItemBytes` each, checked against the file. */
  async count(what: string, minItemBytes: number, unit: string, field: string): Promise<number> {
    const at = this.pos;
    const n = await this.u64(field);
    const room = BigInt(this.remaining);
    if (n * BigInt(minItemBytes) > room) {
      const declared = `declares ${n} ${unit} at byte ${at}, but only ${this.remaining} bytes remain`;
      throw this.error(
        n > ABSURD_COUNT
          ? `${what} ${declared}: an absurd count, the file is corrupt`
          : `truncated at byte ${this.fileSize} while reading ${what} (or the file is corrupt): it ${declared}`,
      );
    }
    return Number(n);
  }

  /**
   * The next string when it is already buffered and fits in the file (the fast path for vocabulary
   * arrays), else null without moving the cursor.
   */
  #bufferedString(): string | null {
    const at = this.pos - this.#start;
    if (at + 8 > this.#len) return null;
    const length = this.#view.getBigUint64(at, true);
    if (length > BigInt(this.#len - at - 8)) return null;
    const n = Number(length);
    this.pos += 8 + n;
    return this.#lenient.decode(this.#buf.subarray(at + 8, at + 8 + n));
  }

  async string(what: string, strict: boolean): Promise<string> {
    const length = await this.count(what, 1, "bytes", `the length of ${what}`);
    const bytes = await this.bytes(length, what);
    if (!strict) return this.#lenient.decode(bytes);
    try {
      return this.#strict.decode(bytes);
    } catch {
      throw this.error(`${what} at byte ${this.pos - length} is not valid UTF-8`);
    }
  }

  async scalar(type: number, what: string): Promise<GgufScalar> {
    if (type === GgufValueType.STRING) return await this.string(what, false);
    const size = SCALAR_BYTES[type];
    const at = await this.#need(size, what);
    this.pos += size;
    const v = this.#view;
    switch (type) {
      case GgufValueType.UINT8:
        return v.getUint8(at);
      case GgufValueType.INT8:
        return v.getInt8(at);
      case GgufValueType.UINT16:
        return v.getUint16(at, true);
      case GgufValueType.INT16:
        return v.getInt16(at, true);
      case GgufValueType.UINT32:
        return v.getUint32(at, true);
      case GgufValueType.INT32:
        return v.getInt32(at, true);
      case GgufValueType.FLOAT32:
        return v.getFloat32(at, true);
      case GgufValueType.BOOL: {
        const b = v.getUint8(at);
        if (b > 1) throw this.error(`${what} at byte ${this.pos - 1} is a bool stored as ${b}, not 0 or 1`);
        return b === 1;
      }
      case GgufValueType.UINT64:
        return exact(v.getBigUint64(at, true));
      case GgufValueType.INT64:
        return exact(v.getBigInt64(at, true));
      case GgufValueType.FLOAT64:
        return v.getFloat64(at, true);
    }
    throw new Error(`unreachable: value type ${type}`);
  }

  async array(what: string): Promise<{ value: GgufArray; elementType: number }> {
    const typeAt = this.pos;
    const elementType = await this.u32(`the element type of ${what}`);
    if (!(elementType in GGUF_VALUE_TYPE_NAMES)) {
      throw this.error(`${what} at byte ${typeAt} has unknown array element type ${elementType}`);
    }
    const minBytes = elementType === GgufValueType.STRING
      ? 8
      : elementType === GgufValueType.ARRAY
      ? 12
      : SCALAR_BYTES[elementType];
    const n = await this.count(what, minBytes, "elements", `the element count of ${what}`);
    if (elementType === GgufValueType.STRING) {
      const out = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        out[i] = this.#bufferedString() ?? await this.string(`${what}[${i}]`, false);
      }
      return { value: out, elementType };
    }
    if (elementType === GgufValueType.ARRAY) {
      const out = new Array<GgufArray>(n);
      for (let i = 0; i < n; i++) out[i] = (await this.array(`${what}[${i}]`)).value;
      return { value: out, elementType };
    }
    if (elementType === GgufValueType.BOOL) {
      const bytes = await this.bytes(n, what);
      const bad = bytes.findIndex((b) => b > 1);
      if (bad >= 0) {
        throw this.error(`${what}[${bad}] at byte ${this.pos - n + bad} is a bool stored as ${bytes[bad]}`);
      }
      return { value: Array.from(bytes, (b) => b === 1), elementType };
    }
    const bytes = await this.bytes(n * minBytes, what);
    // Copy into a fresh, aligned buffer (the read buffer is reused) and read little-endian.
    const copy = bytes.slice().buffer;
    if (!LITTLE_ENDIAN_HOST) throw this.error("reading GGUF arrays needs a little-endian host");
    const ctor = TYPED_ARRAYS[elementType];
    return { value: new ctor(copy) as GgufArray, elementType };
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// deno-lint-ignore no-explicit-any
const TYPED_ARRAYS: Record<number, new (buffer: ArrayBuffer) => any> = {
  0: Uint8Array,
  1: Int8Array,
  2: Uint16Array,
  3: Int16Array,
  4: Uint32Array,
  5: Int32Array,
  6: Float32Array,
  10: BigUint64Array,
  11: BigInt64Array,
  12: Float64Array,
};

function exact(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * Reads and validates the header of the GGUF file at `path` (metadata and tensor table) without
 * reading tensor data.
 *
 * @throws {ModelFormatError} naming the file and the field when the magic or version is wrong, the
 *   file is cut anywhere in the header ("truncated at byte N while reading X"), a length or count
 *   cannot fit in the rest of the file, a value or element type is unknown, a key or tensor name is
 *   repeated, `general.alignment` is not a power of two, a tensor has an unknown ggml type, a zero,
 *   negative or overflowing dimension, a row not a whole number of blocks, a misaligned offset, data
 *   overlapping another tensor's, or data running past the end of the file.
 */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  using file = await Deno.open(path, { read: true });
  const fileSize = (await file.stat()).size;
  const r = new HeaderReader(file, path, fileSize);

  const magicBytes = await r.bytes(4, "the magic");
  const magic = String.fromCharCode(...magicBytes);
  if (magic !== GGUF_MAGIC) {
    const hex = Array.from(magicBytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw r.error(`not a GGUF file: magic is ${JSON.stringify(magic)} (bytes ${hex}), expected "GGUF"`);
  }
  const version = await r.u32("the version");
  if (!SUPPORTED_GGUF_VERSIONS.includes(version)) {
    const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 |
      version >>> 24) >>> 0;
    const hint = SUPPORTED_GGUF_VERSIONS.includes(swapped)
      ? `; read big-endian it is ${swapped}, so this is a big-endian GGUF, which hearth does not read`
      : version === 1
      ? "; version 1 files predate the 64-bit counts, reconvert the model"
      : "";
    throw r.error(
      `unsupported GGUF version ${version}; hearth reads versions ${
        SUPPORTED_GGUF_VERSIONS.join(" and ")
      }${hint}`,
    );
  }
  const tensorCount = await r.count("the tensor table", MIN_TENSOR_INFO_BYTES, "tensors", "the tensor count");
  const kvCount = await r.count("the metadata", MIN_KV_BYTES, "entries", "the metadata entry count");

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufValueKind>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = r.pos;
    const key = await r.string(`the key of metadata entry ${i}`, true);
    if (metadata.has(key)) throw r.error(`metadata key ${key} appears twice (again at byte ${keyAt})`);
    const what = `metadata ${key}`;
    const typeAt = r.pos;
    const type = await r.u32(`the value type of ${what}`);
    if (!(type in GGUF_VALUE_TYPE_NAMES)) {
      throw r.error(`${what} at byte ${typeAt} has unknown value type ${type}`);
    }
    if (type === GgufValueType.ARRAY) {
      const { value, elementType } = await r.array(what);
      metadata.set(key, value);
      metadataTypes.set(key, { type, elementType });
    } else {
      metadata.set(key, await r.scalar(type, what));
      metadataTypes.set(key, { type });
    }
  }

  const alignment = readAlignment(r, metadata, metadataTypes);

  interface Raw {
    name: string;
    dims: number[];
    type: number;
    info: GgmlTypeInfo;
    rel: number;
    nbytes: number;
    nElements: number;
    at: number;
  }
  const raws: Raw[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const at = r.pos;
    const name = await r.string(`the name of tensor ${i}`, true);
    if (names.has(name)) {
      throw r.error(`tensor ${name} appears twice in the tensor table (again at byte ${at})`);
    }
    names.add(name);
    const what = `tensor ${name}`;
    const nDimsAt = r.pos;
    const nDims = await r.u32(`the dimension count of ${what}`);
    if (nDims < 1 || nDims > MAX_DIMS) {
      throw r.error(`${what} at byte ${nDimsAt} has ${nDims} dimensions; ggml tensors have 1 to ${MAX_DIMS}`);
    }
    const dims: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const dim = await r.u64(`dimension ${d} of ${what}`);
      if (dim >= TWO_63) {
        throw r.error(`${what} has a negative dimension ${d} (${BigInt.asIntN(64, dim)} as int64)`);
      }
      if (dim === 0n) throw r.error(`${what} has dimension ${d} equal to 0`);
      elements *= dim;
      if (dim > TWO_53 || elements > TWO_53) {
        throw r.error(
          `${what} has dimensions overflowing 2^53 elements (dimension ${d} is ${dim}, product so far ${elements})`,
        );
      }
      dims.push(Number(dim));
    }
    const typeAt = r.pos;
    const type = await r.u32(`the ggml type of ${what}`);
    const info = GGML_TYPES.get(type);
    if (info === undefined) {
      throw r.error(`${what} has unknown ggml type ${type} (at byte ${typeAt})`);
    }
    if (dims[0] % info.blockSize !== 0) {
      throw r.error(
        `${what} of type ${info.name} has a row of ${dims[0]} elements, not a multiple of its ` +
          `${info.blockSize}-element block`,
      );
    }
    const nElements = Number(elements);
    const nbytes = nElements / info.blockSize * info.typeSize;
    const rel = await r.u64(`the offset of ${what}`);
    if (rel > TWO_53) throw r.error(`${what} has an impossible data offset ${rel}`);
    raws.push({ name, dims, type, info, rel: Number(rel), nbytes, nElements, at });
  }

  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  const tensors: GgufTensorInfo[] = raws.map((t) => {
    if (t.rel % alignment !== 0) {
      throw r.error(
        `tensor ${t.name} has data offset ${t.rel}, not a multiple of the alignment ${alignment}`,
      );
    }
    const offset = dataOffset + t.rel;
    if (offset + t.nbytes > fileSize) {
      throw r.error(
        `tensor ${t.name} runs past the end of the file: its ${t.nbytes} bytes of ${t.info.name} data ` +
          `span bytes ${offset}..${offset + t.nbytes} (data section at ${dataOffset} + offset ${t.rel}), ` +
          `but the file has ${fileSize} bytes (truncated, or a corrupt offset)`,
      );
    }
    return {
      name: t.name,
      dims: t.dims,
      type: t.type,
      typeName: t.info.name,
      relativeOffset: t.rel,
      offset,
      nbytes: t.nbytes,
      nElements: t.nElements,
    };
  });
  checkOverlaps(r, tensors);
  return {
    path,
    fileSize,
    version,
    alignment,
    metadata,
    metadataTypes,
    tensors,
    tensorsByName: new Map(tensors.map((t) => [t.name, t])),
    dataOffset,
  };
}

function readAlignment(
  r: HeaderReader,
  metadata: Map<string, GgufValue>,
  types: Map<string, GgufValueKind>,
): number {
  const value = metadata.get("general.alignment");
  if (value === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const type = types.get("general.alignment")!.type;
  const unsignedInt = [GgufValueType.UINT8, GgufValueType.UINT16, GgufValueType.UINT32, GgufValueType.UINT64]
    .includes(type as 0);
  if (!unsignedInt || typeof value !== "number" || value <= 0 || (value & (value - 1)) !== 0) {
    throw r.error(
      `general.alignment must be a power of two stored as an unsigned integer, got ${String(value)} ` +
        `(${GGUF_VALUE_TYPE_NAMES[type]})`,
    );
  }
  return value;
}

function checkOverlaps(r: HeaderReader, tensors: GgufTensorInfo[]): void {
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1], cur = sorted[i];
    if (cur.offset < prev.offset + prev.nbytes) {
      throw r.error(
        `tensor ${cur.name} (bytes ${cur.offset}..${cur.offset + cur.nbytes}) overlaps tensor ${prev.name} ` +
          `(bytes ${prev.offset}..${prev.offset + prev.nbytes})`,
      );
    }
  }
}

/**
 * Reads one tensor's raw bytes (for small tensors the TypeScript side needs, such as
 * `rope_freqs.weight`).
 *
 * @throws {ModelFormatError} when the file is shorter than the header said.
 */
export async function readGgufTensorBytes(header: GgufHeader, tensor: GgufTensorInfo): Promise<Uint8Array> {
  using file = await Deno.open(header.path, { read: true });
  await file.seek(tensor.offset, Deno.SeekMode.Start);
  const out = new Uint8Array(tensor.nbytes);
  for (let done = 0; done < out.length;) {
    const got = await file.read(out.subarray(done));
    if (got === null) {
      throw new ModelFormatError(
        `${header.path}: truncated at byte ${
          tensor.offset + done
        } while reading the data of tensor ${tensor.name}`,
      );
    }
    done += got;
  }
  return out;
}

/** Describes a metadata value's stored type for messages: `u32`, `array of string`. */
export function describeValueKind(kind: GgufValueKind): string {
  const name = GGUF_VALUE_TYPE_NAMES[kind.type] ?? `type ${kind.type}`;
  return kind.elementType === undefined ? name : `${name} of ${GGUF_VALUE_TYPE_NAMES[kind.elementType]}`;
}
