/**
 * The `--dtype` option: which dtype weights are served in. float64 is accepted for compatibility
 * with the seed's spellings but served as float32 (hearth has no float64 kernels).
 *
 * @module
 */

import type { DType } from "./description.ts";

/** The spellings accepted, grouped by what they mean. */
export const DTYPE_SPELLINGS: Readonly<Record<DType | "auto" | "float64", readonly string[]>> = {
  auto: ["auto"],
  f32: ["float32", "fp32", "f32"],
  f16: ["float16", "fp16", "half", "f16"],
  bf16: ["bfloat16", "bf16"],
  float64: ["float64", "fp64", "double"],
};

/** A `--dtype` value that is not one of {@link DTYPE_SPELLINGS}. */
export class DtypeOptionError extends Error {
  /** Creates the error; `message` lists the accepted spellings. */
  constructor(message: string) {
    super(message);
    this.name = "DtypeOptionError";
  }
}

/**
 * Parses a `--dtype` value (case-insensitive).
 *
 * @returns the dtype, or "auto" (keep the checkpoint's); float64 spellings give f32 and a warning.
 * @throws {DtypeOptionError} listing the accepted spellings.
 */
export function parseDtypeOption(s: string): { dtype: DType | "auto"; warning?: string } {
  const v = s.trim().toLowerCase();
  if (DTYPE_SPELLINGS.float64.includes(v)) return { dtype: "f32", warning: "float64 is served as float32" };
  for (const dtype of ["auto", "f32", "f16", "bf16"] as const) {
    if (DTYPE_SPELLINGS[dtype].includes(v)) return { dtype };
  }
  const accepted = Object.values(DTYPE_SPELLINGS).flat().join(", ");
  throw new DtypeOptionError(`unknown dtype ${JSON.stringify(s)}; accepted: ${accepted}`);
}
