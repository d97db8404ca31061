/**
 * Speed of the quantized CPU kernels, one thread: GB/s of weights read (and G multiply-adds/s) for decode
 * (T = 1: y = W x) and a small prefill (T = --tokens) per weight type, against the float kernels (f32,
 * f16, bf16) on the same shapes. Each call quantizes the activations first, as the forward pass will,
 * and multiplies the weights in the table's packed layout where it has one (the AVX2 panels), as the
 * loaded model does.
 *
 *   deno run -A build.ts && deno run -A bench/quant_bench.ts [--isa all] [--types q4_0,q8_0] [--ms 300]
 *
 * Shapes: SmolLM2-135M's 1536 x 576 (FFN gate/up, ~0.5 MB at 4 bits: in L2) and 49152 x 576 (the LM
 * head: tens of MB, from memory). K-quants need k % 256 == 0, so they use k = 512 there.
 * --isa all also times every table this CPU runs (c, avx2, avx512, avx512vnni).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  BLOCK,
  gaussian,
  isaNames,
  isKQuant,
  matmulRepeat,
  type QType,
  QTYPES,
  randomBlocks,
  rowBytes,
} from "../src/native/quant_testing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    isa: { type: "string", default: "best" },
    types: { type: "string", default: Object.keys(QTYPES).join(",") },
    ms: { type: "string", default: "300" },
    tokens: { type: "string", default: "16" },
  },
});
const targetMs = Number(values.ms);
const tokens = Number(values.tokens);
const types = values.types!.split(",") as QType[];
const names = isaNames();
const isas = values.isa === "all" ? names.map((_, i) => i) : [-1];

/**
 * Seconds per product (the library's own clock around the iterations, so packing and the call are left
 * out): calibrate the iteration count, then the fastest of 5 timed runs (on a shared machine the
 * fastest is the one least disturbed). Also whether the packed layout ran.
 */
function time(run: (iters: number) => { seconds: number; packed: boolean }): { s: number; packed: boolean } {
  let iters = 1;
  for (;;) {
    const { seconds } = run(iters);
    if (seconds * 1000 > targetMs / 5 || iters > 1 << 20) break;
    iters *= Math.max(2, Math.ceil(targetMs / 5 / Math.max(seconds * 1000, 0.01)));
  }
  let best = Infinity, packed = false;
  for (let i = 0; i < 5; i++) {
    const r = run(iters);
    best = Math.min(best, r.seconds / iters);
    packed = r.packed;
  }
  return { s: best, packed };
}

function floatWeights(dtype: number, n: number, k: number): Uint8Array {
  const f = gaussian(n * k, 3, 0.05);
  if (dtype === 0) return new Uint8Array(f.buffer);
  const out = new Uint16Array(n * k);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < n * k; i++) {
    if (dtype === 2) out[i] = bits[i] >>> 16;
    else {
      // f16 of a small normal number (|x| < 1), truncated: fine for timing
      const e = ((bits[i] >>> 23) & 0xff) - 112;
      out[i] = ((bits[i] >>> 16) & 0x8000) | (e > 0 ? (e << 10) | ((bits[i] >>> 13) & 0x3ff) : 0);
    }
  }
  return new Uint8Array(out.buffer);
}

const rows: string[][] = [["shape", "T", "type", "isa", "MB", "us/call", "GB/s", "Gelem/s"]];
function report(
  shape: string,
  T: number,
  type: string,
  isa: string,
  bytes: number,
  s: number,
  elems: number,
) {
  rows.push([
    shape,
    String(T),
    type,
    isa,
    (bytes / 1e6).toFixed(2),
    (s * 1e6).toFixed(1),
    (bytes / s / 1e9).toFixed(1),
    (elems * T / s / 1e9).toFixed(2),
  ]);
}
for (const [n, k0] of [[1536, 576], [49152, 576]]) {
  for (const T of n > 2000 ? [1] : [1, tokens]) {
    const y = new Float32Array(n * T);
    for (const [name, dtype] of [["f32", 0], ["f16", 1], ["bf16", 2]] as const) {
      const w = floatWeights(dtype, n, k0);
      const x = gaussian(k0 * T, 7);
      const { s } = time((it) => matmulRepeat(-1, w, dtype, x, y, T, n, k0, it));
      report(`${n}x${k0}`, T, name, "float", w.length, s, n * k0);
    }
    for (const t of types) {
      const dtype = QTYPES[t];
      const k = isKQuant(t) ? k0 - (k0 % 256) : k0;
      const w = randomBlocks(t, n, k, 11);
      const x = gaussian(k * T, 7);
      if (w.length !== n * rowBytes(dtype, k)) throw new Error(t);
      for (const isa of isas) {
        if (isa === 0 && n > 2000) continue; // the plain C path is slow; the small shape says enough
        const { s, packed } = time((it) => matmulRepeat(isa, w, dtype, x, y, T, n, k, it));
        report(
          `${n}x${k}`,
          T,
          t,
          (isa < 0 ? "best" : names[isa]) + (packed ? " packed" : ""),
          w.length,
          s,
          n * k,
        );
      }
    }
  }
}
const width = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const r of rows) console.log(r.map((v, c) => v.padStart(width[c])).join("  "));
console.log(
  `(one thread, activations quantized on every call, weights in the table's packed layout where it has one; ${
    types.map((t) => `${t} ${BLOCK[t].bytes}B/${BLOCK[t].elems}`).join(", ")
  })`,
);
