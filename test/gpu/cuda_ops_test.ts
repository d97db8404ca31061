/**
 * Op parity of the CUDA backend (`deno task test:gpu`; ignored where the CUDA library or a device is
 * missing): every op the forward pass uses, run alone on the device against the CPU backend or a float64
 * reference on random inputs, with tolerances per dtype; and the device sampler against the CPU
 * sampler on the same logits.
 *
 *  - dequantization of every device layout: bit-identical to the CPU's hearth_dequantize_row;
 *  - the device RNG: bit-identical to hearth_uniform;
 *  - matmuls (decode matvec and tensor-core tiles, every device dtype, ragged shapes, the fused SwiGLU
 *    pair): float64 of the CPU-dequantized weights is the reference; quantized dtypes also against the
 *    CPU's own integer kernels;
 *  - residual add + RMSNorm, SwiGLU: float64;
 *  - sampling: the CPU backend's step (logits all, every sampling feature) gives logits and tokens; the
 *    device sampler on those logits must pick the same tokens and report the same log-probabilities.
 *
 * Tolerances are first estimates written before this ran on a GPU (see docs/cuda.md);
 * the first GPU run calibrates them.
 */
import { assert, assertEquals } from "../assert.ts";
import {
  cudaDequantize,
  cudaMatmul,
  cudaRmsnorm,
  cudaSample,
  cudaSwiglu,
  cudaUniform,
  haveCudaDevice,
  referenceUniform,
} from "../../src/native/cuda_testing.ts";
import { dequantize, gaussian, quantMatmul, randomBlocks, rng } from "../../src/native/quant_testing.ts";
import {
  LogitsMode,
  NativeContext,
  NativeModel,
  type SequenceSampling,
  sequenceSampling,
  StepBatch,
} from "../../src/native/hearth.ts";
import { describeModel } from "../../src/model/loader.ts";

const GPU = haveCudaDevice();
const ignore = !GPU;
if (!GPU) console.error("test/gpu: no CUDA library or device here: the GPU tests are ignored");

const ROOT = new URL("../../", import.meta.url).pathname;
const F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, Q4_0 = 4, Q4_K = 10;

/** ‖a − b‖ / ‖b‖ */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

function f32ToF16Bits(v: Float32Array): Uint16Array {
  const out = new Uint16Array(v.length);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < v.length; i++) {
    f[0] = v[i];
    const b = u[0], sign = (b >>> 16) & 0x8000, e = ((b >>> 23) & 0xff) - 127 + 15;
    out[i] = e <= 0 ? sign : e >= 31 ? sign | 0x7c00 : sign | (e << 10) | ((b >>> 13) & 0x3ff);
  }
  return out;
}

function f32ToBf16Bits(v: Float32Array): Uint16Array {
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length), out = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return out;
}

/** A random weight (rows, cols) of dtype in GGUF bytes, and its values as the CPU dequantizes them. */
function randomWeight(
  dtype: number,
  rows: number,
  cols: number,
  seed: number,
): { bytes: Uint8Array; values: Float32Array } {
  if (dtype === Q8_0 || dtype === Q4_0 || dtype === Q4_K) {
    const name = dtype === Q8_0 ? "q8_0" : dtype === Q4_0 ? "q4_0" : "q4_k";
    const b = randomBlocks(name, rows, cols, seed);
    return { bytes: b, values: dequantize(dtype, b, rows, cols)! };
  }
  const v = gaussian(rows * cols, seed, 1 / Math.sqrt(cols));
  if (dtype === F32) return { bytes: new Uint8Array(v.buffer), values: v };
  const bits = dtype === F16 ? f32ToF16Bits(v) : f32ToBf16Bits(v);
  const b = new Uint8Array(bits.buffer);
  return { bytes: b, values: dequantize(dtype, b, rows, cols)! };
}

/** float64 y (T, rows) = x W^T */
function reference(w: Float32Array, rows: number, cols: number, x: Float32Array, T: number): Float64Array {
  const y = new Float64Array(T * rows);
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[t * cols + c];
      y[t * rows + r] = s;
    }
  }
  return y;
}

Deno.test({
  name: "cuda ops: the device RNG is bit-identical to hearth_uniform",
  ignore,
  fn: () => {
    const r = rng(5);
    const n = 4096;
    const seeds = new BigUint64Array(n), pos = new BigUint64Array(n);
    for (let i = 0; i < n; i++) {
      seeds[i] = BigInt(Math.floor(r() * 2 ** 32)) << 32n | BigInt(Math.floor(r() * 2 ** 32));
      pos[i] = BigInt(i < 16 ? i : Math.floor(r() * 2 ** 20));
    }
    seeds[0] = 0n, seeds[1] = (1n << 64n) - 1n;
    const got = cudaUniform(seeds, pos);
    for (let i = 0; i < n; i++) {
      assertEquals(got[i], referenceUniform(seeds[i], pos[i]), `seed ${seeds[i]} pos ${pos[i]}`);
    }
  },
});

Deno.test({
  name: "cuda ops: every device weight layout dequantizes to the CPU's values exactly",
  ignore,
  fn: () => {
    for (const dtype of [F32, F16, BF16, Q8_0, Q4_0, Q4_K]) {
      const rows = 7, cols = dtype === Q4_K ? 512 : 96;
      const w = randomWeight(dtype, rows, cols, 11 + dtype);
      const got = cudaDequantize(dtype, w.bytes, rows, cols);
      for (let i = 0; i < got.length; i++) {
        if (!Object.is(got[i], w.values[i])) {
          throw new Error(`dtype ${dtype} element ${i}: ${got[i]} != ${w.values[i]}`);
        }
      }
    }
  },
});

/** Relative-error bounds per dtype against float64 of the exact weight values. */
const MATMUL_BOUND: Record<number, number> = {
  [F32]: 1e-5, // f32 FMAs
  [F16]: 2e-5, // activations as f16 hi + lo: about 2^-21 relative each
  [BF16]: 2e-5, // activations as bf16 hi + lo: about 2^-17 relative each
  [Q8_0]: 1.5e-2, // activations quantized to 8 bits per 32 values
  [Q4_0]: 1.5e-2,
  [Q4_K]: 1.5e-2,
};

Deno.test({
  name: "cuda ops: matmuls of every dtype, decode and tile paths, ragged shapes, against float64 and the CPU",
  ignore,
  fn: () => {
    for (const dtype of [F32, F16, BF16, Q8_0, Q4_0, Q4_K]) {
      const shapes: [number, number][] = dtype === Q4_K
        ? [[96, 256], [130, 512]]
        : dtype >= Q8_0
        ? [[96, 64], [130, 160]]
        : [[96, 64], [130, 40], [33, 36]]; // 40: not a multiple of the 32-column tile; 36: no multiple of 8
      for (const [rows, cols] of shapes) {
        const w = randomWeight(dtype, rows, cols, rows * 7 + cols + dtype);
        for (const T of [1, 2, 3, 5, 8, 9, 16, 33, 64, 100]) {
          const x = gaussian(T * cols, T * 13 + cols, 1);
          const ref = reference(w.values, rows, cols, x, T);
          for (const forceTiles of [false, true]) {
            const y = cudaMatmul(dtype, w.bytes, rows, cols, x, T, { forceTiles });
            const err = relErr(y, ref);
            assert(
              err <= MATMUL_BOUND[dtype],
              `dtype ${dtype} ${rows}x${cols} T ${T} ${forceTiles ? "tiles" : "auto"}: rel err ${err}`,
            );
          }
          if (dtype >= Q8_0) { // the CPU's integer kernels have the same kind of error, about as large
            const cpu = quantMatmul(-1, w.bytes, dtype, x, T, rows, cols)!;
            const cpuErr = relErr(cpu, ref);
            assert(cpuErr <= MATMUL_BOUND[dtype], `CPU dtype ${dtype}: ${cpuErr}`);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "cuda ops: the fused SwiGLU pair (gate, up) and plain SwiGLU, against float64",
  ignore,
  fn: () => {
    for (const dtype of [F32, BF16, Q8_0, Q4_0, Q4_K]) {
      const rows = 72, cols = dtype === Q4_K ? 256 : 64;
      const g = randomWeight(dtype, rows, cols, 3 + dtype), u = randomWeight(dtype, rows, cols, 4 + dtype);
      for (const T of [1, 4, 8, 20]) {
        const x = gaussian(T * cols, 9 + T, 1);
        const rg = reference(g.values, rows, cols, x, T), ru = reference(u.values, rows, cols, x, T);
        const ref = rg.map((v, i) => v / (1 + Math.exp(-v)) * ru[i]);
        const y = cudaMatmul(dtype, g.bytes, rows, cols, x, T, { up: u.bytes });
        const err = relErr(y, ref);
        assert(err <= 2 * MATMUL_BOUND[dtype], `swiglu pair dtype ${dtype} T ${T}: ${err}`);
      }
    }
    const a = gaussian(10000, 1, 4), b = gaussian(10000, 2, 1);
    const got = cudaSwiglu(a, b);
    const ref = Array.from(a, (v, i) => v / (1 + Math.exp(-v)) * b[i]);
    assert(relErr(got, ref) < 1e-6);
  },
});

Deno.test({
  name: "cuda ops: residual add + RMSNorm against float64",
  ignore,
  fn: () => {
    for (const D of [16, 64, 576, 2048, 2050]) {
      const rows = 5,
        x = gaussian(rows * D, D, 3),
        add = gaussian(rows * D, D + 1, 1),
        w = gaussian(D, D + 2, 1);
      const { out, x: xo } = cudaRmsnorm(x, add, w, rows, D, 1e-5);
      const ref = new Float64Array(rows * D);
      for (let r = 0; r < rows; r++) {
        let ss = 0;
        for (let c = 0; c < D; c++) ss += (x[r * D + c] + add[r * D + c]) ** 2;
        const scale = 1 / Math.sqrt(ss / D + 1e-5);
        for (let c = 0; c < D; c++) ref[r * D + c] = w[c] * (x[r * D + c] + add[r * D + c]) * scale;
      }
      assert(relErr(out, ref) < 1e-6, `D ${D}`);
      assert(relErr(xo, Array.from(x, (v, i) => v + add[i])) < 1e-7);
    }
  },
});

// ---------------------------------------------------------------------------------------------------------
// The sampler

function sampling(p: Partial<SequenceSampling>): SequenceSampling {
  return sequenceSampling({ seed: 1n, temperature: 1, ...p });
}

/** Sampling settings that together reach every step of the pipeline. */
function samplerCases(vocab: number, seed: number, history: number[]): SequenceSampling[] {
  const s = BigInt(seed);
  const h = { history, promptLen: Math.floor(history.length / 2) };
  return [
    sampling({ temperature: 0, wantLogprob: true, nTopLogprobs: 5 }),
    sampling({ seed: s, temperature: 0.8 }),
    sampling({ seed: s + 1n, temperature: 1.3, topK: 40, wantLogprob: true }),
    sampling({ seed: s + 2n, temperature: 1.0, topP: 0.9 }),
    sampling({ seed: s + 3n, temperature: 1.7, topP: 0.999 }), // grows the sorted window past 64
    sampling({ seed: s + 4n, temperature: 1.0, topK: 50, topP: 0.7, minP: 0.05 }),
    sampling({ seed: s + 5n, temperature: 0.9, minP: 0.1 }),
    sampling({
      seed: s + 6n,
      temperature: 1.0,
      repetitionPenalty: 1.3,
      presencePenalty: 0.5,
      frequencyPenalty: 0.3,
      ...h,
    }),
    sampling({ seed: s + 7n, temperature: 1.0, noRepeatNgramSize: 2, ...h }),
    sampling({
      seed: s + 8n,
      temperature: 0.7,
      biasIds: [3, 3, vocab - 1],
      biasValues: [2, 1.5, -Infinity],
      minTokens: 99,
      stopIds: [1, 2],
      ...h,
    }),
    sampling({ temperature: 0, repetitionPenalty: 1.2, nTopLogprobs: 20, ...h }),
    sampling({ seed: s + 9n, temperature: 2.0, topK: Math.min(vocab, 3000) }), // sorts in global memory
  ];
}

/** Runs the CPU step with these samplings, then the device sampler on the CPU's logits; compares. */
async function compareSampler(dir: string, seed: number): Promise<void> {
  const { description } = await describeModel(dir);
  const model = await NativeModel.load(description, "f32");
  const vocab = description.config.vocabSize;
  const ctx = await NativeContext.create(model, {
    threads: 2,
    kvBlockSize: 16,
    kvNumBlocks: 64,
    maxBatchTokens: 256,
    maxBatchSeqs: 16,
    maxBlocksPerSeq: 16,
  });
  try {
    const r = rng(seed);
    const history = Array.from({ length: 24 }, () => Math.floor(r() * vocab));
    const cases = samplerCases(vocab, seed, history);
    const batch = new StepBatch(ctx.options, vocab);
    batch.clear(LogitsMode.all);
    const lens: number[] = [];
    cases.forEach((c, i) => {
      const len = 3 + (i % 5);
      const prompt = Array.from({ length: len }, () => Math.floor(r() * vocab));
      batch.addSequence(prompt, 0, [i], c);
      lens.push(len);
    });
    await ctx.step(batch);
    const cpuTokens = Array.from(batch.outTokens.subarray(0, cases.length));
    const cpuLogprobs = Array.from(batch.outLogprobs.subarray(0, cases.length));
    const cpuTop = Array.from(batch.outTopIds.subarray(0, cases.length * 20));
    // The device sampler on each sequence's last-token logits.
    const rows = new Float32Array(cases.length * vocab);
    let t = 0;
    lens.forEach((len, i) => {
      t += len;
      rows.set(batch.outLogits!.subarray((t - 1) * vocab, t * vocab), i * vocab);
    });
    batch.outTokens.fill(-7);
    batch.outLogprobs.fill(NaN);
    cudaSample(vocab, rows, batch.encode());
    for (let i = 0; i < cases.length; i++) {
      assertEquals(batch.outTokens[i], cpuTokens[i], `${dir} case ${i}: token`);
      if (cases[i].wantLogprob) {
        assert(Math.abs(batch.outLogprobs[i] - cpuLogprobs[i]) < 1e-4, `case ${i}: logprob`);
      }
      if (cases[i].nTopLogprobs > 0) {
        assertEquals(
          Array.from(batch.outTopIds.subarray(i * 20, i * 20 + cases[i].nTopLogprobs)),
          cpuTop.slice(i * 20, i * 20 + cases[i].nTopLogprobs),
          `case ${i}: top ids`,
        );
      }
    }
  } finally {
    ctx.free();
    model.free();
  }
}

Deno.test({
  name: "cuda sampler: the CPU's tokens and log-probabilities on the CPU's logits (every sampling step)",
  ignore,
  fn: async () => {
    for (let seed = 1; seed <= 12; seed++) {
      await compareSampler(`${ROOT}test/fixtures/models/llama-f32`, seed);
    }
    await compareSampler(`${ROOT}test/fixtures/models/qwen2-f32`, 99);
  },
});
