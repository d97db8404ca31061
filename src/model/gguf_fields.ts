/**
 * Typed, checked access to GGUF metadata, for the readers that turn a GGUF header into a model
 * description and a tokenizer. Every failure names the file and the key, as {@link ConfigReader}
 * does for config.json.
 *
 * @module
 */

import { ModelConfigError } from "./errors.ts";
import { describeValueKind, type GgufHeader, type GgufValue, GgufValueType } from "./gguf.ts";

const INTEGER_TYPES: readonly number[] = [
  GgufValueType.UINT8,
  GgufValueType.INT8,
  GgufValueType.UINT16,
  GgufValueType.INT16,
  GgufValueType.UINT32,
  GgufValueType.INT32,
  GgufValueType.UINT64,
  GgufValueType.INT64,
];
const FLOAT_TYPES: readonly number[] = [GgufValueType.FLOAT32, GgufValueType.FLOAT64];

/** Reads metadata values of one GGUF header with type checks. */
export class GgufFields {
  constructor(readonly header: GgufHeader) {}

  get path(): string {
    return this.header.path;
  }

  has(key: string): boolean {
    return this.header.metadata.has(key);
  }

  /** A {@link ModelConfigError} naming the file and key. */
  error(key: string, message: string): ModelConfigError {
    return new ModelConfigError(`${this.path}: metadata ${key} ${message}`);
  }

  #get(key: string): GgufValue | undefined {
    return this.header.metadata.get(key);
  }

  #kind(key: string): string {
    return describeValueKind(this.header.metadataTypes.get(key)!);
  }

  #required(key: string): never {
    throw new ModelConfigError(`${this.path}: metadata ${key} is missing`);
  }

  /** A string value. */
  string(key: string, fallback?: string): string {
    const v = this.#get(key);
    if (v === undefined) return fallback ?? this.#required(key);
    if (typeof v !== "string") throw this.error(key, `is a ${this.#kind(key)}, expected a string`);
    return v;
  }

  /** A string value, or null when absent. */
  optionalString(key: string): string | null {
    return this.has(key) ? this.string(key) : null;
  }

  /** A non-negative integer stored in any integer type. */
  uint(key: string, fallback?: number): number {
    const v = this.#get(key);
    if (v === undefined) return fallback ?? this.#required(key);
    const type = this.header.metadataTypes.get(key)!.type;
    if (!INTEGER_TYPES.includes(type)) {
      throw this.error(key, `is a ${this.#kind(key)}, expected an integer`);
    }
    if (typeof v !== "number" || v < 0) {
      throw this.error(key, `is ${String(v)}, expected a non-negative integer below 2^53`);
    }
    return v;
  }

  /** A positive integer stored in any integer type, at most `max` (see ConfigReader.positiveInt). */
  positiveInt(key: string, fallback?: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.uint(key, fallback);
    if (v === 0) throw this.error(key, "is 0, expected a positive integer");
    if (v > max) throw this.error(key, `is ${v}, more than the ${max} hearth takes`);
    return v;
  }

  /** An integer token id, or null when absent (negative ids mean "none" in some files). */
  tokenId(key: string): number | null {
    const v = this.#get(key);
    if (v === undefined) return null;
    const type = this.header.metadataTypes.get(key)!.type;
    if (!INTEGER_TYPES.includes(type) || typeof v !== "number") {
      throw this.error(key, `is a ${this.#kind(key)}, expected an integer token id`);
    }
    return v < 0 ? null : v;
  }

  /** A number stored as a float or integer type. */
  number(key: string, fallback?: number): number {
    const v = this.#get(key);
    if (v === undefined) return fallback ?? this.#required(key);
    const type = this.header.metadataTypes.get(key)!.type;
    if ((!FLOAT_TYPES.includes(type) && !INTEGER_TYPES.includes(type)) || typeof v !== "number") {
      throw this.error(key, `is a ${this.#kind(key)}, expected a number`);
    }
    return type === GgufValueType.FLOAT32 ? shortestF32(v) : v;
  }

  /** A positive finite number. */
  positiveNumber(key: string, fallback?: number): number {
    const v = this.number(key, fallback);
    if (!(v > 0) || !Number.isFinite(v)) throw this.error(key, `is ${v}, expected a positive number`);
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.#get(key);
    if (v === undefined) return fallback ?? this.#required(key);
    if (typeof v !== "boolean") throw this.error(key, `is a ${this.#kind(key)}, expected a bool`);
    return v;
  }

  /** An array of strings. */
  stringArray(key: string): string[] {
    const v = this.#get(key);
    if (v === undefined) return this.#required(key);
    const kind = this.header.metadataTypes.get(key)!;
    if (kind.type !== GgufValueType.ARRAY || kind.elementType !== GgufValueType.STRING) {
      throw this.error(key, `is a ${this.#kind(key)}, expected an array of strings`);
    }
    return v as string[];
  }

  /** An array of numbers of any numeric element type, as JS numbers. */
  numberArray(key: string): ArrayLike<number> {
    const v = this.#get(key);
    if (v === undefined) return this.#required(key);
    const kind = this.header.metadataTypes.get(key)!;
    const et = kind.elementType ?? -1;
    if (kind.type !== GgufValueType.ARRAY || (!INTEGER_TYPES.includes(et) && !FLOAT_TYPES.includes(et))) {
      throw this.error(key, `is a ${this.#kind(key)}, expected an array of numbers`);
    }
    if (v instanceof BigInt64Array || v instanceof BigUint64Array) return Array.from(v, Number);
    return v as ArrayLike<number>;
  }
}

/**
 * The shortest decimal that rounds to the same float32 as `v` (a float32 read as a double), so an
 * `f32` 1e-5 reads as 1e-5 rather than 9.999999747378752e-6, as in config.json.
 */
export function shortestF32(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === v) return d;
  }
  return v;
}
