/**
 * Test-only binding of the CUDA backend's single-op exports (kernels/cuda/test_ops.cu,
 * `hearth_test_cuda_*`) and its copy-bandwidth probe, for test/gpu/ and bench/cuda_bench.ts. Not part
 * of the engine; opens lib/libhearth_cuda.so (or $HEARTH_CUDA_LIB) on first use.
 *
 * @module
 */
import { CUDA_LIBRARY } from "../../build.ts";

const SYMBOLS = {
  hearth_cuda_device_count: { parameters: [], result: "i32" },
  hearth_test_cuda_dequantize: { parameters: ["i32", "buffer", "i64", "i64", "buffer"], result: "i32" },
  hearth_test_cuda_matmul: {
    parameters: ["i32", "buffer", "buffer", "i64", "i64", "buffer", "i32", "buffer", "i32"],
    result: "i32",
  },
  hearth_test_cuda_rmsnorm: {
    parameters: ["buffer", "buffer", "buffer", "i32", "i32", "f32", "buffer", "buffer"],
    result: "i32",
  },
  hearth_test_cuda_swiglu: { parameters: ["buffer", "buffer", "i64", "buffer"], result: "i32" },
  hearth_test_cuda_uniform: { parameters: ["buffer", "buffer", "i32", "buffer"], result: "i32" },
  hearth_test_cuda_sample: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  hearth_cuda_bench_copy: { parameters: ["u64", "i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let lib: Lib | null = null;
let tried = false;

/** The test exports, or null when the CUDA library is not built or cannot load. */
export function cudaTestLib(): Lib | null {
  if (tried) return lib;
  tried = true;
  const path = Deno.env.get("HEARTH_CUDA_LIB") ??
    new URL(`../../lib/${CUDA_LIBRARY}`, import.meta.url).pathname;
  try {
    lib = Deno.dlopen(path, SYMBOLS).symbols;
  } catch {
    lib = null;
  }
  return lib;
}

/** True when the CUDA library loads and the driver shows at least one device. */
export function haveCudaDevice(): boolean {
  const l = cudaTestLib();
  return l !== null && l.hearth_cuda_device_count() > 0;
}

type Bytes = Uint8Array<ArrayBuffer>;
const bytes = (a: ArrayBufferView): Bytes =>
  new Uint8Array(a.buffer as ArrayBuffer, a.byteOffset, a.byteLength);

/** The values of a weight (rows, cols) of dtype (GGUF bytes) as the CUDA kernels read them. */
export function cudaDequantize(dtype: number, src: Uint8Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols).fill(NaN);
  const rc = cudaTestLib()!.hearth_test_cuda_dequantize(
    dtype,
    bytes(src),
    BigInt(rows),
    BigInt(cols),
    bytes(out),
  );
  if (rc !== 0) throw new Error(`hearth_test_cuda_dequantize(${dtype}) failed`);
  return out;
}

/**
 * y (T, rows) = x (T, cols) W^T on the device, by the path the forward pass takes for T (or the tiles
 * for any T with forceTiles); with `up`, y = silu(x W^T) * (x up^T) (the fused SwiGLU pair).
 */
export function cudaMatmul(
  dtype: number,
  w: Uint8Array,
  rows: number,
  cols: number,
  x: Float32Array,
  T: number,
  opts: { up?: Uint8Array; forceTiles?: boolean } = {},
): Float32Array {
  const y = new Float32Array(T * rows).fill(NaN);
  const rc = cudaTestLib()!.hearth_test_cuda_matmul(
    dtype,
    bytes(w),
    opts.up ? bytes(opts.up) : null,
    BigInt(rows),
    BigInt(cols),
    bytes(x),
    T,
    bytes(y),
    opts.forceTiles ? 1 : 0,
  );
  if (rc !== 0) throw new Error(`hearth_test_cuda_matmul(${dtype}, ${rows}x${cols}, T ${T}) failed`);
  return y;
}

/** out = rmsnorm(x + add) * w per row on the device; also returns the updated x. */
export function cudaRmsnorm(
  x: Float32Array,
  add: Float32Array | null,
  w: Float32Array,
  rows: number,
  D: number,
  eps: number,
): { out: Float32Array; x: Float32Array } {
  const out = new Float32Array(rows * D), xOut = new Float32Array(rows * D);
  const rc = cudaTestLib()!.hearth_test_cuda_rmsnorm(
    bytes(x),
    add ? bytes(add) : null,
    bytes(w),
    rows,
    D,
    eps,
    bytes(out),
    bytes(xOut),
  );
  if (rc !== 0) throw new Error("hearth_test_cuda_rmsnorm failed");
  return { out, x: xOut };
}

/** silu(a) * b on the device. */
export function cudaSwiglu(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  if (cudaTestLib()!.hearth_test_cuda_swiglu(bytes(a), bytes(b), BigInt(a.length), bytes(out)) !== 0) {
    throw new Error("hearth_test_cuda_swiglu failed");
  }
  return out;
}

/** hc_uniform(seed, position) computed on the device. */
export function cudaUniform(seeds: BigUint64Array, positions: BigUint64Array): Float64Array {
  const out = new Float64Array(seeds.length);
  if (
    cudaTestLib()!.hearth_test_cuda_uniform(bytes(seeds), bytes(positions), seeds.length, bytes(out)) !== 0
  ) {
    throw new Error("hearth_test_cuda_uniform failed");
  }
  return out;
}

/**
 * The device sampler on given logits (row s: sequence s's last-token logits) for an encoded
 * hearth_batch (StepBatch.encode()): writes the batch's out arrays as hearth_step would.
 */
export function cudaSample(vocab: number, logits: Float32Array, encodedBatch: Uint8Array): void {
  if (cudaTestLib()!.hearth_test_cuda_sample(vocab, bytes(logits), bytes(encodedBatch)) !== 0) {
    throw new Error("hearth_test_cuda_sample failed");
  }
}

/** Device copy bandwidth (GB/s, read + write) measured with the library's own copy kernel. */
export function cudaCopyBandwidth(bytesToCopy = 2 ** 31, iters = 20): number {
  const out = new Float64Array(1);
  if (cudaTestLib()!.hearth_cuda_bench_copy(BigInt(bytesToCopy), iters, bytes(out)) !== 0) {
    throw new Error("hearth_cuda_bench_copy failed");
  }
  return out[0];
}

/** hearth_uniform of kernels/cpu/sampler.c in BigInt arithmetic: the reference of the device RNG. */
export function referenceUniform(seed: bigint, position: bigint): number {
  const M = (1n << 64n) - 1n;
  const mix = (z: bigint) => {
    z = (z + 0x9e3779b97f4a7c15n) & M;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    return z ^ (z >> 31n);
  };
  const r = mix((seed ^ mix(position)) & M);
  return Number(r >> 11n) / 9007199254740992;
}
