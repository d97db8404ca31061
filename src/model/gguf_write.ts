/**
 * Writes GGUF files (version 3 by default): for tests (tiny models, tokenizers, deliberately broken
 * files) and for benchmark models with random weights. Tensor data is given as raw bytes in the
 * tensor's ggml layout — one buffer or chunks from an (async) iterable, so a large file streams
 * through without being held in memory — and {@link randomTensorData} makes such chunks with finite
 * block scales for every type hearth computes with.
 *
 * Metadata values carry their GGUF type explicitly (`gv.u32(5)`, `gv.array("string", [...])`),
 * because a JS number does not say whether it is a u32 or an f32.
 *
 * @module
 */

import { GGML_TYPE, GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GgufValueType } from "./gguf.ts";
import { chunksOf, type TensorBytes, writeAll } from "./tensor_bytes.ts";

/** A scalar value type name. */
export type GgufScalarTypeName =
  | "u8"
  | "i8"
  | "u16"
  | "i16"
  | "u32"
  | "i32"
  | "f32"
  | "bool"
  | "string"
  | "u64"
  | "i64"
  | "f64";

/** A metadata value with its GGUF type. */
export type GgufTypedValue =
  | { type: GgufScalarTypeName; value: number | bigint | boolean | string }
  | {
    type: "array";
    elementType: GgufScalarTypeName | "array";
    value: ArrayLike<number | bigint | boolean | string> | GgufTypedValue[];
  }
  /** Exact bytes after the key: the u32 type code and the encoded value (for broken files). */
  | { type: "raw"; bytes: Uint8Array };

/** Constructors of {@link GgufTypedValue}s. */
export const gv = {
  u8: (value: number): GgufTypedValue => ({ type: "u8", value }),
  i8: (value: number): GgufTypedValue => ({ type: "i8", value }),
  u16: (value: number): GgufTypedValue => ({ type: "u16", value }),
  i16: (value: number): GgufTypedValue => ({ type: "i16", value }),
  u32: (value: number): GgufTypedValue => ({ type: "u32", value }),
  i32: (value: number): GgufTypedValue => ({ type: "i32", value }),
  f32: (value: number): GgufTypedValue => ({ type: "f32", value }),
  bool: (value: boolean): GgufTypedValue => ({ type: "bool", value }),
  str: (value: string): GgufTypedValue => ({ type: "string", value }),
  u64: (value: number | bigint): GgufTypedValue => ({ type: "u64", value }),
  i64: (value: number | bigint): GgufTypedValue => ({ type: "i64", value }),
  f64: (value: number): GgufTypedValue => ({ type: "f64", value }),
  array: (
    elementType: GgufScalarTypeName | "array",
    value: ArrayLike<number | bigint | boolean | string> | GgufTypedValue[],
  ): GgufTypedValue => ({ type: "array", elementType, value }),
  raw: (bytes: Uint8Array): GgufTypedValue => ({ type: "raw", bytes }),
};

const TYPE_CODES: Record<GgufScalarTypeName | "array", number> = {
  u8: GgufValueType.UINT8,
  i8: GgufValueType.INT8,
  u16: GgufValueType.UINT16,
  i16: GgufValueType.INT16,
  u32: GgufValueType.UINT32,
  i32: GgufValueType.INT32,
  f32: GgufValueType.FLOAT32,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
  array: GgufValueType.ARRAY,
  u64: GgufValueType.UINT64,
  i64: GgufValueType.INT64,
  f64: GgufValueType.FLOAT64,
};

/** One tensor to write. */
export interface GgufTensorToWrite {
  name: string;
  /** Dimensions innermost first (ne0 = the contiguous row length = in_features of a weight). */
  dims: (number | bigint)[];
  /** ggml type: a name (`"Q4_1"`) or number. Unknown numbers are written as given (broken files). */
  type: string | number;
  /** The bytes, exactly the tensor's size. Absent: the range is left as zeros. */
  data?: TensorBytes;
  /** Stored offset relative to the data section (default: packed in order, each aligned). */
  offset?: number | bigint;
}

/** What to write. */
export interface GgufToWrite {
  /** Metadata in order; `general.alignment` is added when `alignment` is not 32 and it is absent. */
  metadata?: Iterable<[string, GgufTypedValue]> | Record<string, GgufTypedValue>;
  tensors?: GgufTensorToWrite[];
  /** Default 3. */
  version?: number;
  /** Default 32 (or `general.alignment` when the metadata has it). */
  alignment?: number;
  /** Default "GGUF". */
  magic?: string;
}

/** The encoded header and where each tensor's data goes. */
export interface EncodedGgufHeader {
  /** Everything before the data section, alignment padding included. */
  bytes: Uint8Array;
  /** Absolute offset of the data section (= bytes.length). */
  dataOffset: number;
  /** Each tensor's offset relative to the data section, in the order given. */
  offsets: number[];
  /** Each tensor's byte size (0 for an unknown type). */
  sizes: number[];
  /** Where the tensor table ends (the alignment padding starts). */
  tensorInfoEnd: number;
  /** Bytes the whole file has: the data section ends at the end of the furthest tensor. */
  fileSize: number;
}

/** Bytes of a tensor of ggml type `type` with `dims`; 0 when the type is unknown. */
export function ggmlTensorBytes(type: string | number, dims: readonly (number | bigint)[]): number {
  const info = GGML_TYPES.get(typeCode(type));
  if (info === undefined) return 0;
  const elements = dims.reduce<number>((a, d) => a * Number(d), 1);
  return Math.ceil(elements / info.blockSize) * info.typeSize;
}

function typeCode(type: string | number): number {
  if (typeof type === "number") return type;
  const code = GGML_TYPE[type.toUpperCase()];
  if (code === undefined) throw new Error(`writeGguf: unknown ggml type ${type}`);
  return code;
}

/** Growable little-endian byte sink. */
class Sink {
  #buf = new Uint8Array(1024);
  #view = new DataView(this.#buf.buffer);
  length = 0;
  readonly #enc = new TextEncoder();

  #room(n: number): number {
    if (this.length + n > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
      next.set(this.#buf.subarray(0, this.length));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  u8(v: number) {
    const at = this.#room(1);
    this.#view.setUint8(at, v);
  }
  u32(v: number) {
    const at = this.#room(4);
    this.#view.setUint32(at, v, true);
  }
  u64(v: number | bigint) {
    const at = this.#room(8);
    this.#view.setBigUint64(at, BigInt.asUintN(64, BigInt(v)), true);
  }
  bytes(b: Uint8Array) {
    const at = this.#room(b.length);
    this.#buf.set(b, at);
  }
  string(s: string) {
    const b = this.#enc.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  /** Room for `n` bytes, then `write(view, at)` (the view is taken after any growth). */
  #put(n: number, write: (view: DataView, at: number) => void) {
    const at = this.#room(n);
    write(this.#view, at);
  }
  scalar(type: GgufScalarTypeName, v: number | bigint | boolean | string) {
    switch (type) {
      case "u8":
        return this.u8(Number(v));
      case "i8":
        return this.#put(1, (d, at) => d.setInt8(at, Number(v)));
      case "u16":
        return this.#put(2, (d, at) => d.setUint16(at, Number(v), true));
      case "i16":
        return this.#put(2, (d, at) => d.setInt16(at, Number(v), true));
      case "u32":
        return this.u32(Number(v));
      case "i32":
        return this.#put(4, (d, at) => d.setInt32(at, Number(v), true));
      case "f32":
        return this.#put(4, (d, at) => d.setFloat32(at, Number(v), true));
      case "bool":
        return this.u8(v ? 1 : 0);
      case "string":
        return this.string(String(v));
      case "u64":
        return this.u64(BigInt(v as number | bigint));
      case "i64":
        return this.#put(8, (d, at) => d.setBigInt64(at, BigInt(v as number | bigint), true));
      case "f64":
        return this.#put(8, (d, at) => d.setFloat64(at, Number(v), true));
    }
  }
  value(v: GgufTypedValue) {
    if (v.type === "raw") return this.bytes(v.bytes);
    this.u32(TYPE_CODES[v.type]);
    this.valueBody(v);
  }
  valueBody(v: GgufTypedValue) {
    if (v.type === "raw") return this.bytes(v.bytes);
    if (v.type !== "array") return this.scalar(v.type, v.value);
    this.u32(TYPE_CODES[v.elementType]);
    this.u64(v.value.length);
    if (v.elementType === "array") {
      for (const inner of v.value as GgufTypedValue[]) this.valueBody(inner);
      return;
    }
    const et = v.elementType;
    const items = v.value as ArrayLike<number | bigint | boolean | string>;
    for (let i = 0; i < items.length; i++) this.scalar(et, items[i]);
  }
  pad(alignment: number) {
    const target = Math.ceil(this.length / alignment) * alignment;
    this.#room(target - this.length);
  }
  result(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

/** Encodes the header (up to the data section) and lays out the tensor data. */
export function encodeGgufHeader(spec: GgufToWrite): EncodedGgufHeader {
  const metadata: [string, GgufTypedValue][] = spec.metadata === undefined
    ? []
    : Symbol.iterator in spec.metadata
    ? [...(spec.metadata as Iterable<[string, GgufTypedValue]>)]
    : Object.entries(spec.metadata);
  const declared = metadata.find(([k]) => k === "general.alignment")?.[1];
  const alignment = spec.alignment ??
    (declared && declared.type !== "array" && declared.type !== "raw"
      ? Number(declared.value)
      : GGUF_DEFAULT_ALIGNMENT);
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && declared === undefined) {
    metadata.push(["general.alignment", gv.u32(alignment)]);
  }
  const tensors = spec.tensors ?? [];

  const s = new Sink();
  s.bytes(new TextEncoder().encode(spec.magic ?? "GGUF"));
  s.u32(spec.version ?? 3);
  s.u64(tensors.length);
  s.u64(metadata.length);
  for (const [key, value] of metadata) {
    s.string(key);
    s.value(value);
  }
  const offsets: number[] = [];
  const sizes: number[] = [];
  let next = 0;
  for (const t of tensors) {
    const size = ggmlTensorBytes(t.type, t.dims);
    const offset = t.offset === undefined ? next : Number(t.offset);
    if (t.offset === undefined) next = Math.ceil((offset + size) / alignment) * alignment;
    offsets.push(offset);
    sizes.push(size);
    s.string(t.name);
    s.u32(t.dims.length);
    for (const d of t.dims) s.u64(d);
    s.u32(typeCode(t.type));
    s.u64(offset);
  }
  const tensorInfoEnd = s.length;
  s.pad(alignment);
  const bytes = s.result();
  // Tensors too big to exist (broken-file tests) do not size the file.
  const end = tensors.reduce((m, _, i) => {
    const e = offsets[i] + sizes[i];
    return e < 2 ** 48 ? Math.max(m, e) : m;
  }, 0);
  return { bytes, dataOffset: bytes.length, offsets, sizes, tensorInfoEnd, fileSize: bytes.length + end };
}

/**
 * Writes a GGUF file at `path` (replacing any file there).
 *
 * @throws {Error} when a ggml type name is unknown or a tensor's data is not exactly its size.
 */
export async function writeGguf(path: string, spec: GgufToWrite): Promise<EncodedGgufHeader> {
  const header = encodeGgufHeader(spec);
  const tensors = spec.tensors ?? [];
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  await writeAll(file, header.bytes);
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    if (t.data === undefined) continue;
    await file.seek(header.dataOffset + header.offsets[i], Deno.SeekMode.Start);
    let written = 0;
    for await (const chunk of chunksOf(t.data)) {
      written += chunk.length;
      if (written > header.sizes[i]) break;
      await writeAll(file, chunk);
    }
    if (written !== header.sizes[i]) {
      throw new Error(
        `writeGguf: tensor ${t.name} got ${
          written > header.sizes[i] ? `more than ${header.sizes[i]}` : written
        } ` +
          `bytes of data; dims ${JSON.stringify(t.dims.map(Number))} of ${t.type} need ${header.sizes[i]}`,
      );
    }
  }
  await file.truncate(header.fileSize);
  return header;
}

/**
 * Byte positions of the f16 scale fields in one block of each quantized type hearth computes with:
 * `d` (the scale; values span about ±d·maxQ) and, where the type has one, `m` (Q4_1/Q5_1: an added
 * minimum, set to -amplitude/2) or `dmin` (K-quants: a subtracted minimum scaled by a 6-bit or 4-bit
 * sub-block minimum, set so the subtraction reaches about amplitude/2).
 */
const QUANT_SCALES: Readonly<Record<string, { d: number; maxQ: number; min?: { at: number; per: number } }>> =
  {
    Q4_0: { d: 0, maxQ: 8 },
    Q4_1: { d: 0, maxQ: 15, min: { at: 2, per: -1 } },
    Q5_0: { d: 0, maxQ: 16 },
    Q5_1: { d: 0, maxQ: 31, min: { at: 2, per: -1 } },
    Q8_0: { d: 0, maxQ: 127 },
    Q2_K: { d: 80, maxQ: 3 * 15, min: { at: 82, per: 15 } },
    Q3_K: { d: 108, maxQ: 4 * 32 },
    Q4_K: { d: 0, maxQ: 15 * 63, min: { at: 2, per: 63 } },
    Q5_K: { d: 0, maxQ: 31 * 63, min: { at: 2, per: 63 } },
    Q6_K: { d: 208, maxQ: 32 * 32 },
  };

/** ggml types {@link randomTensorData} makes data for. */
export const RANDOM_TENSOR_TYPES: readonly string[] = ["F32", "F16", "BF16", ...Object.keys(QUANT_SCALES)];

/** Options of {@link randomTensorData}. */
export interface RandomTensorOptions {
  /** Seed of the generator (default 1). */
  seed?: number;
  /** Values lie roughly within ±amplitude (default 0.1). */
  amplitude?: number;
  /** Bytes per chunk (rounded to whole blocks; default 4 MiB). */
  chunkBytes?: number;
}

/**
 * Random data for a tensor of ggml type `type` (F32, F16, BF16 or a quantized type hearth computes
 * with) and `dims`, as chunks. Float values are uniform in ±amplitude; quantized blocks get random
 * quants and f16 scales (`d`, and `m`/`dmin` where the type has one) chosen so values stay about
 * within ±amplitude (see QUANT_SCALES), so a random model gives finite logits. Deterministic for a seed.
 */
export function* randomTensorData(
  type: string | number,
  dims: readonly number[],
  options: RandomTensorOptions = {},
): Generator<Uint8Array> {
  const code = typeCode(type);
  const info = GGML_TYPES.get(code);
  if (info === undefined) throw new Error(`randomTensorData: unknown ggml type ${type}`);
  const amplitude = options.amplitude ?? 0.1;
  let state = (options.seed ?? 1) >>> 0 || 1;
  const next = () => {
    // xorshift32
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  const total = ggmlTensorBytes(code, dims);
  const blockBytes = info.typeSize;
  const chunkBytes = Math.max(
    blockBytes,
    Math.floor((options.chunkBytes ?? 4 << 20) / blockBytes) * blockBytes,
  );
  const quant = QUANT_SCALES[info.name];
  if (!RANDOM_TENSOR_TYPES.includes(info.name)) {
    throw new Error(`randomTensorData: type ${info.name} is not one hearth computes with`);
  }
  for (let done = 0; done < total;) {
    const n = Math.min(chunkBytes, total - done);
    const chunk = new Uint8Array(n);
    const view = new DataView(chunk.buffer);
    if (info.name === "F32") {
      for (let i = 0; i < n; i += 4) view.setFloat32(i, uniform(next(), amplitude), true);
    } else if (info.name === "F16") {
      for (let i = 0; i < n; i += 2) view.setUint16(i, f16Bits(uniform(next(), amplitude)), true);
    } else if (info.name === "BF16") {
      for (let i = 0; i < n; i += 2) view.setUint16(i, bf16Bits(uniform(next(), amplitude)), true);
    } else {
      const words = new Uint32Array(chunk.buffer, 0, n >>> 2);
      for (let i = 0; i < words.length; i++) words[i] = next();
      for (let i = words.length * 4; i < n; i++) chunk[i] = next() & 0xff;
      const d = f16Bits(amplitude / quant.maxQ);
      const min = quant.min;
      const m = min === undefined ? 0 : f16Bits(min.per < 0 ? -amplitude / 2 : amplitude / 2 / min.per);
      for (let b = 0; b < n; b += blockBytes) {
        view.setUint16(b + quant.d, d, true);
        if (min !== undefined) view.setUint16(b + min.at, m, true);
      }
    }
    yield chunk;
    done += n;
  }
}

function uniform(bits: number, amplitude: number): number {
  return (bits / 0x1_0000_0000 * 2 - 1) * amplitude;
}

/** IEEE half bits of `x` (round to nearest even; finite inputs of modest size). */
export function f16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && (half & 1)) ? 1 : 0));
  }
  const half = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && (half & 1)) ? 1 : 0));
}

/** bfloat16 bits of `x` (round to nearest even). */
export function bf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
