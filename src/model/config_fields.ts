/**
 * Typed reads of keys of a JSON config file, with errors that name the file and the key
 * (`/m/config.json: hidden_size must be a positive integer, got "abc"`). Hugging Face writes `null`
 * for "not set", so for optional keys null means "use the default", as it does in transformers.
 *
 * @module
 */

import { ModelConfigError } from "./errors.ts";

/** Reads typed values out of one JSON object of a config file. */
export class ConfigReader {
  /**
   * @param path the file, for messages.
   * @param json the object to read.
   * @param prefix prepended to key names in messages (`rope_scaling.` for a nested object).
   */
  constructor(readonly path: string, readonly json: Record<string, unknown>, readonly prefix = "") {}

  /**
   * Parses a config file's text: it must be a JSON object.
   *
   * @throws {ModelConfigError} naming the file when the text is not JSON or not an object.
   */
  static parse(path: string, text: string): ConfigReader {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ModelConfigError(`${path} is not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (!isObject(json)) throw new ModelConfigError(`${path}: expected a JSON object, got ${describe(json)}`);
    return new ConfigReader(path, json);
  }

  /** True when the key is present and not null. */
  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  /** The raw value (undefined when absent). */
  raw(key: string): unknown {
    return this.json[key];
  }

  /** An error naming this file and `key`. */
  error(key: string, message: string): ModelConfigError {
    return new ModelConfigError(`${this.path}: ${this.prefix}${key} ${message}`);
  }

  /**
   * A positive integer, at most `max` (a model's sizes are bounded before anything is sized by them: a
   * file claiming 2^32 layers is an error, not a loop over them); required when `fallback` is undefined.
   */
  positiveInt(key: string, fallback?: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.value(key, fallback, "a positive integer");
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw this.error(key, `must be a positive integer, got ${describe(v)}`);
    }
    if (v > max) throw this.error(key, `must be at most ${max}, got ${v}`);
    return v;
  }

  /** A non-negative integer or null; null (or absent, with `fallback` null) means "not set". */
  optionalNonNegativeInt(key: string, fallback: number | null): number | null {
    const v = this.json[key] === undefined ? fallback : this.json[key];
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw this.error(key, `must be a non-negative integer or null, got ${describe(v)}`);
    }
    return v;
  }

  /** A finite number > 0; required when `fallback` is undefined. */
  positiveNumber(key: string, fallback?: number): number {
    const v = this.value(key, fallback, "a positive number");
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw this.error(key, `must be a positive number, got ${describe(v)}`);
    }
    return v;
  }

  /** A finite number; required when `fallback` is undefined. */
  number(key: string, fallback?: number): number {
    const v = this.value(key, fallback, "a number");
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw this.error(key, `must be a number, got ${describe(v)}`);
    }
    return v;
  }

  /** A boolean; required when `fallback` is undefined. */
  bool(key: string, fallback?: boolean): boolean {
    const v = this.value(key, fallback, "true or false");
    if (typeof v !== "boolean") throw this.error(key, `must be true or false, got ${describe(v)}`);
    return v;
  }

  /** A string; required when `fallback` is undefined. */
  string(key: string, fallback?: string): string {
    const v = this.value(key, fallback, "a string");
    if (typeof v !== "string") throw this.error(key, `must be a string, got ${describe(v)}`);
    return v;
  }

  /** A list of strings, or `fallback` when absent or null. */
  stringList(key: string, fallback: string[] | null): string[] | null {
    const v = this.json[key] ?? fallback;
    if (v === null) return null;
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
      throw this.error(key, `must be a list of strings, got ${describe(v)}`);
    }
    return v;
  }

  /** A token id (non-negative integer), or null when absent/null and `fallback` is null. */
  tokenId(key: string, fallback: number | null): number | null {
    return this.optionalNonNegativeInt(key, fallback);
  }

  /** One token id or a list of them (eos_token_id); [] when absent/null and `fallback` is null. */
  tokenIds(key: string, fallback: number | number[] | null): number[] {
    const v = this.json[key] ?? fallback;
    if (v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((id) => typeof id === "number" && Number.isSafeInteger(id) && id >= 0)) {
      throw this.error(key, `must be a token id or a list of token ids, got ${describe(v)}`);
    }
    return [...new Set(list as number[])];
  }

  /** A nested object read with its own reader, or null when absent or null. */
  object(key: string): ConfigReader | null {
    const v = this.json[key];
    if (v === undefined || v === null) return null;
    if (!isObject(v)) throw this.error(key, `must be an object, got ${describe(v)}`);
    return new ConfigReader(this.path, v, `${this.prefix}${key}.`);
  }

  private value(key: string, fallback: unknown, what: string): unknown {
    const v = this.json[key];
    if (v === undefined || (v === null && fallback !== undefined)) {
      if (fallback === undefined) throw this.error(key, `is missing; it must be ${what}`);
      return fallback;
    }
    return v;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A short rendering of a bad value for a message: JSON, cut to 60 characters. */
function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}
