/**
 * Test-only binding of the quantized CPU kernels (kernels/cpu/quant*.c): the `hearth_test_*` exports
 * that test/quant/ and bench/quant_bench.ts use. Not part of the engine.
 *
 * @module
 */
import { libraryFileName } from "../../build.ts";
import { DTYPE_BYTES, DTYPE_CODE, type QuantDType } from "../model/description.ts";
import { f16Bits } from "../model/gguf_write.ts";

const SYMBOLS = {
  hearth_test_quant_isa_name: { parameters: ["i32"], result: "pointer" },
  hearth_test_quant_isa_count: { parameters: [], result: "i32" },
  hearth_test_quant_row_bytes: { parameters: ["i32", "i64"], result: "i64" },
  hearth_test_quant_act_bytes: { parameters: ["i32", "i64", "i64"], result: "i64" },
  hearth_test_dequantize_row: { parameters: ["i32", "buffer", "buffer", "i64"], result: "i32" },
  hearth_test_quantize_row: { parameters: ["i32", "buffer", "buffer", "i64"], result: "i32" },
  hearth_test_quant_act: { parameters: ["i32", "i32", "buffer", "i64", "i64", "buffer"], result: "i32" },
  hearth_test_quant_matmul: {
    parameters: ["i32", "buffer", "i64", "buffer", "i32", "buffer", "i64", "i64", "i64"],
    result: "i32",
  },
  hearth_test_quant_matmul_act: {
    parameters: ["i32", "buffer", "i64", "buffer", "i32", "buffer", "i64", "i64", "i64"],
    result: "i32",
  },
  hearth_test_quant_pack_bytes: { parameters: ["i32", "i32", "i64", "i64"], result: "i64" },
  hearth_test_quant_matmul_packed: {
    parameters: ["i32", "buffer", "i64", "buffer", "i32", "buffer", "i64", "i64", "i64", "i64"],
    result: "i32",
  },
  hearth_test_matmul_repeat: {
    parameters: ["i32", "buffer", "i32", "buffer", "buffer", "buffer", "i64", "i64", "i64", "i32", "buffer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The block-quantized types. */
export type QType = QuantDType;
/** hearth_dtype codes of the block-quantized types (the model description's, without the float ones). */
export const QTYPES: Readonly<Record<QType, number>> = Object.fromEntries(
  Object.entries(DTYPE_CODE).filter(([name]) => !(name in DTYPE_BYTES)),
) as Record<QType, number>;

/** Elements and bytes of one block. */
export const BLOCK: Record<QType, { elems: number; bytes: number }> = {
  q8_0: { elems: 32, bytes: 34 },
  q4_0: { elems: 32, bytes: 18 },
  q4_1: { elems: 32, bytes: 20 },
  q5_0: { elems: 32, bytes: 22 },
  q5_1: { elems: 32, bytes: 24 },
  q2_k: { elems: 256, bytes: 84 },
  q3_k: { elems: 256, bytes: 110 },
  q4_k: { elems: 256, bytes: 144 },
  q5_k: { elems: 256, bytes: 176 },
  q6_k: { elems: 256, bytes: 210 },
};

/** Byte offsets of the f16 scale fields (d, dmin, m) inside one block. */
export const F16_FIELDS: Record<QType, number[]> = {
  q8_0: [0],
  q4_0: [0],
  q4_1: [0, 2],
  q5_0: [0],
  q5_1: [0, 2],
  q2_k: [80, 82],
  q3_k: [108],
  q4_k: [0, 2],
  q5_k: [0, 2],
  q6_k: [208],
};

export function isKQuant(t: QType): boolean {
  return BLOCK[t].elems === 256;
}

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let lib: Lib | null = null;

/** Opens lib/libhearth.so (or $HEARTH_LIB) with the test symbols. */
export function quantLib(): Lib {
  if (lib) return lib;
  const path = Deno.env.get("HEARTH_LIB") ??
    new URL(`../../lib/${libraryFileName()}`, import.meta.url).pathname;
  lib = Deno.dlopen(path, SYMBOLS).symbols;
  return lib;
}

function cstr(p: Deno.PointerValue): string | null {
  return p === null ? null : Deno.UnsafePointerView.getCString(p);
}

/** Names of the dot-product tables this CPU runs, index = the `isa` argument ("c" first). */
export function isaNames(): string[] {
  const l = quantLib();
  return Array.from(
    { length: l.hearth_test_quant_isa_count() },
    (_, i) => cstr(l.hearth_test_quant_isa_name(i))!,
  );
}

/** The table hearth_quant_matmul uses (HEARTH_ISA respected). */
export function chosenIsa(): string {
  return cstr(quantLib().hearth_test_quant_isa_name(-1))!;
}

export function rowBytes(dtype: number, n: number): number {
  return Number(quantLib().hearth_test_quant_row_bytes(dtype, BigInt(n)));
}

export function actBytes(dtype: number, T: number, k: number): number {
  return Number(quantLib().hearth_test_quant_act_bytes(dtype, BigInt(T), BigInt(k)));
}

/** Dequantizes `rows` rows of n elements each; null when n is bad. */
export function dequantize(dtype: number, src: Uint8Array, rows: number, n: number): Float32Array | null {
  const rb = rowBytes(dtype, n);
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const s = src.subarray(r * rb, (r + 1) * rb) as Uint8Array<ArrayBuffer>;
    const d = new Float32Array(out.buffer, r * n * 4, n);
    if (quantLib().hearth_test_dequantize_row(dtype, s, d, BigInt(n)) !== 0) return null;
  }
  return out;
}

/** Quantizes rows of n floats (quantize-on-load); null for an unsupported dtype or a bad n. */
export function quantize(dtype: number, src: Float32Array, rows: number, n: number): Uint8Array | null {
  const rb = rowBytes(dtype, n);
  if (rb <= 0) return null;
  const out = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    const s = new Float32Array(src.buffer, src.byteOffset + r * n * 4, n);
    const d = out.subarray(r * rb, (r + 1) * rb);
    if (quantLib().hearth_test_quantize_row(dtype, s, d, BigInt(n)) !== 0) return null;
  }
  return out;
}

/** Raw hearth_test_quantize_row (for error cases). */
export function quantizeRowRaw(dtype: number, src: Float32Array, dst: Uint8Array, n: number): number {
  return quantLib().hearth_test_quantize_row(
    dtype,
    src as Float32Array<ArrayBuffer>,
    dst as Uint8Array<ArrayBuffer>,
    BigInt(n),
  );
}

/** The activations hearth_quant_act (isa -1) or table `isa` makes for T rows of k floats. */
export function quantAct(dtype: number, x: Float32Array, T: number, k: number, isa = -1): Uint8Array {
  const out = new Uint8Array(Math.max(actBytes(dtype, T, k), 1));
  const rc = quantLib().hearth_test_quant_act(
    isa,
    dtype,
    x as Float32Array<ArrayBuffer>,
    BigInt(T),
    BigInt(k),
    out,
  );
  if (rc !== 0) throw new Error(`quant_act failed for dtype ${dtype}, k ${k}`);
  return out;
}

/** f16 bits to a number. */
export function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The values the quantized activations stand for (Q8_0 blocks, or Q8_K for K-quant weights). */
export function dequantizeAct(dtype: number, act: Uint8Array, T: number, k: number): Float64Array {
  const v = new DataView(act.buffer, act.byteOffset, act.byteLength);
  const out = new Float64Array(T * k);
  const kq = dtype >= QTYPES.q2_k;
  const bs = kq ? 292 : 34, qk = kq ? 256 : 32;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < k / qk; b++) {
      const o = (t * (k / qk) + b) * bs;
      const d = kq ? v.getFloat32(o, true) : f16ToNumber(v.getUint16(o, true));
      const q0 = o + (kq ? 4 : 2);
      for (let i = 0; i < qk; i++) out[t * k + b * qk + i] = d * v.getInt8(q0 + i);
    }
  }
  return out;
}

/** y (T, n) = W x with table `isa` (-1: hearth_quant_matmul), activations quantized in C. */
export function quantMatmul(
  isa: number,
  w: Uint8Array,
  dtype: number,
  x: Float32Array,
  T: number,
  n: number,
  k: number,
): Float32Array | null {
  const y = new Float32Array(Math.max(T * n, 1)).fill(NaN);
  const rc = quantLib().hearth_test_quant_matmul(
    isa,
    y,
    BigInt(n),
    w as Uint8Array<ArrayBuffer>,
    dtype,
    x as Float32Array<ArrayBuffer>,
    BigInt(T),
    BigInt(n),
    BigInt(k),
  );
  return rc === 0 ? y : null;
}

/** Bytes of table `isa`'s packed layout of an (n, k) matrix of `dtype` (0: the table keeps it as stored). */
export function packBytes(isa: number, dtype: number, n: number, k: number): number {
  return Number(quantLib().hearth_test_quant_pack_bytes(isa, dtype, BigInt(n), BigInt(k)));
}

/**
 * Table `isa`'s packed product (hearth_test_quant_matmul_packed): packs w, quantizes x and writes rows
 * [r0, n) of y (T, n - r0) with stride n - r0. Null where the table has no packed layout for dtype.
 */
export function quantMatmulPacked(
  isa: number,
  w: Uint8Array,
  dtype: number,
  x: Float32Array,
  T: number,
  n: number,
  k: number,
  r0 = 0,
): Float32Array | null {
  const y = new Float32Array(Math.max(T * (n - r0), 1)).fill(NaN);
  const rc = quantLib().hearth_test_quant_matmul_packed(
    isa,
    y,
    BigInt(n - r0),
    w as Uint8Array<ArrayBuffer>,
    dtype,
    x as Float32Array<ArrayBuffer>,
    BigInt(T),
    BigInt(n),
    BigInt(k),
    BigInt(r0),
  );
  return rc === 0 ? y : null;
}

/** hearth_test_quant_matmul_act: y (T rows of ldy) from activations already quantized; returns the rc. */
export function quantMatmulAct(
  isa: number,
  y: Float32Array,
  ldy: number,
  w: Uint8Array,
  dtype: number,
  act: Uint8Array,
  T: number,
  n: number,
  k: number,
): number {
  return quantLib().hearth_test_quant_matmul_act(
    isa,
    y as Float32Array<ArrayBuffer>,
    BigInt(ldy),
    w as Uint8Array<ArrayBuffer>,
    dtype,
    act as Uint8Array<ArrayBuffer>,
    BigInt(T),
    BigInt(n),
    BigInt(k),
  );
}

/**
 * `iters` products Y (T, n) = W X on one thread: quantized dtypes quantize X each time with table `isa`
 * (-1: the chosen one) then multiply, on W packed once into the table's own layout where it has one (the
 * product the forward pass runs); F32/F16/BF16 use the float kernels (matvec for T = 1). Returns the
 * seconds the iterations took (packing left out) and whether the packed layout ran; throws on bad input.
 */
export function matmulRepeat(
  isa: number,
  w: Uint8Array,
  dtype: number,
  x: Float32Array,
  y: Float32Array,
  T: number,
  n: number,
  k: number,
  iters: number,
): { seconds: number; packed: boolean } {
  const act = new Uint8Array(Math.max(actBytes(dtype, T, k), 1));
  const seconds = new Float64Array(1);
  const rc = quantLib().hearth_test_matmul_repeat(
    isa,
    w as Uint8Array<ArrayBuffer>,
    dtype,
    x as Float32Array<ArrayBuffer>,
    act,
    y as Float32Array<ArrayBuffer>,
    BigInt(T),
    BigInt(n),
    BigInt(k),
    iters,
    seconds,
  );
  if (rc < 0) throw new Error(`matmulRepeat: dtype ${dtype} isa ${isa} T=${T} n=${n} k=${k} refused`);
  return { seconds: seconds[0], packed: rc === 1 };
}

/** Seeded uniform [0, 1) numbers (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random weight rows of type t: random code bytes, every f16 field a finite value of a real file's size. */
export function randomBlocks(t: QType, rows: number, k: number, seed: number): Uint8Array {
  const r = rng(seed);
  const { elems, bytes } = BLOCK[t];
  const nb = rows * k / elems;
  const out = new Uint8Array(nb * bytes);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  const v = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    for (const off of F16_FIELDS[t]) {
      const mag = 2 ** (-12 + 10 * r());
      v.setUint16(b * bytes + off, f16Bits(r() < 0.8 ? mag : -mag), true);
    }
  }
  return out;
}

/** Seeded Gaussian floats (Box-Muller), times `scale`. */
export function gaussian(count: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const u = Math.max(r(), 1e-12), v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}
