/**
 * The quantized CPU kernels (kernels/cpu/quant*.c) through their test-only FFI exports:
 *  (a) dequantization of every type is bit-exact with the gguf Python package (goldens made by
 *      test/oracle/make_quant_goldens.py);
 *  (b) hearth_quant_matmul equals a float64 product of the dequantized weights and the dequantized
 *      quantized activations (1e-4 relative), and the plain float product within the bound that the
 *      activations' rounding allows;
 *  (c) every instruction-set table this CPU runs gives the C table's results, and HEARTH_ISA picks the
 *      table as it does for the float kernels;
 *  (d) quantize-on-load: Q8_0 / Q4_0 bit-exact with gguf's quantizer, Q4_K round-trips within a bound;
 *  (e) bad sizes are refused, never a crash.
 */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import {
  actBytes,
  BLOCK,
  chosenIsa,
  dequantize,
  dequantizeAct,
  gaussian,
  isaNames,
  isKQuant,
  matmulRepeat,
  packBytes,
  type QType,
  QTYPES,
  quantAct,
  quantize,
  quantizeRowRaw,
  quantMatmul,
  quantMatmulAct,
  quantMatmulPacked,
  randomBlocks,
  rowBytes,
} from "../../src/native/quant_testing.ts";

const FIX = new URL("../fixtures/quant/", import.meta.url);
const manifest = JSON.parse(Deno.readTextFileSync(new URL("manifest.json", FIX))) as {
  rows: number;
  cols: number;
  types: Record<string, { dtype: number; block_elems: number; block_bytes: number }>;
};
const TYPES = Object.keys(QTYPES) as QType[];

function readF32(name: string): Float32Array {
  const b = Deno.readFileSync(new URL(name, FIX));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

Deno.test("quant: block sizes agree with gguf's table", () => {
  for (const t of TYPES) {
    const m = manifest.types[t];
    assertEquals(m.dtype, QTYPES[t], t);
    assertEquals(m.block_elems, BLOCK[t].elems, t);
    assertEquals(m.block_bytes, BLOCK[t].bytes, t);
    assertEquals(rowBytes(QTYPES[t], 512), 512 / BLOCK[t].elems * BLOCK[t].bytes, t);
  }
});

Deno.test("quant: dequantize is bit-exact with gguf for every type", () => {
  const { rows, cols } = manifest;
  for (const t of TYPES) {
    const blocks = Deno.readFileSync(new URL(`${t}.blocks.bin`, FIX));
    const want = readF32(`${t}.deq.f32`);
    const got = dequantize(QTYPES[t], blocks, rows, cols)!;
    let bad = 0;
    for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) bad++;
    assertEquals(bad, 0, `${t}: ${bad} of ${want.length} values differ`);
  }
});

/** Activations with a few outlier channels, like real hidden states. */
function activations(T: number, k: number, seed: number): Float32Array {
  const x = gaussian(T * k, seed);
  for (let t = 0; t < T; t++) for (let i = 7; i < k; i += 97) x[t * k + i] *= 20;
  return x;
}

interface Reference {
  ref: Float64Array; // W_deq . X_deq
  abs: Float64Array; // sum |W_deq * X_deq|
  plain: Float64Array; // W_deq . X (the float activations)
  bound: Float64Array; // |plain - ref| can be at most this (activation rounding)
}

function reference(t: QType, w: Uint8Array, x: Float32Array, T: number, n: number, k: number): Reference {
  const dtype = QTYPES[t];
  const wd = dequantize(dtype, w, n, k)!;
  const xq = dequantizeAct(dtype, quantAct(dtype, x, T, k), T, k);
  const qk = isKQuant(t) ? 256 : 32;
  // |x - x_deq| <= d / 2 per element, d = max |x| / 127 per activation block; Q8_0 stores d as f16,
  // which adds at most 127 * d * 2^-11 (0.062 d).
  const perD = isKQuant(t) ? 0.5001 : 0.5 + 127 * 2 ** -11 + 1e-4;
  const err = new Float64Array(T * k);
  for (let tt = 0; tt < T; tt++) {
    for (let b = 0; b < k / qk; b++) {
      let amax = 0;
      for (let i = 0; i < qk; i++) amax = Math.max(amax, Math.abs(x[tt * k + b * qk + i]));
      for (let i = 0; i < qk; i++) err[tt * k + b * qk + i] = perD * amax / 127;
    }
  }
  const r: Reference = {
    ref: new Float64Array(T * n),
    abs: new Float64Array(T * n),
    plain: new Float64Array(T * n),
    bound: new Float64Array(T * n),
  };
  for (let tt = 0; tt < T; tt++) {
    for (let row = 0; row < n; row++) {
      let s = 0, a = 0, p = 0, e = 0;
      for (let i = 0; i < k; i++) {
        const wv = wd[row * k + i];
        s += wv * xq[tt * k + i];
        a += Math.abs(wv * xq[tt * k + i]);
        p += wv * x[tt * k + i];
        e += Math.abs(wv) * err[tt * k + i];
      }
      r.ref[tt * n + row] = s;
      r.abs[tt * n + row] = a;
      r.plain[tt * n + row] = p;
      r.bound[tt * n + row] = e;
    }
  }
  return r;
}

/** Largest |y - ref| / (|ref| + 0.01 * abs): the "relative" error, with cancellation accounted for. */
function relErr(y: Float32Array, r: Reference): number {
  let worst = 0;
  for (let i = 0; i < r.ref.length; i++) {
    const e = Math.abs(y[i] - r.ref[i]) / (Math.abs(r.ref[i]) + 0.01 * r.abs[i]);
    worst = Math.max(worst, Number.isFinite(e) ? e : Infinity);
  }
  return worst;
}

/** (n, T, k) shapes: tile remainders in rows and tokens, an odd number of 32-blocks for the 512-bit pairs. */
function shapes(t: QType): [number, number, number][] {
  const k = isKQuant(t) ? 768 : 800;
  // T >= 16: the AMX tiles (16 rows x 16 tokens) with row and token tails; 4352 > one 2048-value chunk
  const amx: [number, number, number][] = [[37, 35, k], [16, 16, isKQuant(t) ? 256 : 64], [5, 17, 4352]];
  return [[11, 7, k], [5, 1, k], [3, 2, k], [1, 5, k], [8, 4, isKQuant(t) ? 256 : 64], [4, 3, 32 * 8], ...amx]
    .filter(([, , kk]) => kk % BLOCK[t].elems === 0) as [number, number, number][];
}

Deno.test("quant: matmul matches the float64 reference on every ISA table", () => {
  const isas = isaNames();
  assertEquals(isas[0], "c");
  const worst: Record<string, string> = {};
  for (const t of TYPES) {
    const dtype = QTYPES[t];
    const cases: { w: Uint8Array; n: number; T: number; k: number; seed: number }[] = shapes(t).map((
      [n, T, k],
      i,
    ) => ({ w: randomBlocks(t, n, k, 1000 * dtype + i), n, T, k, seed: 77 * dtype + i }));
    // the gguf golden rows too
    cases.push({
      w: Deno.readFileSync(new URL(`${t}.blocks.bin`, FIX)),
      n: manifest.rows,
      T: 3,
      k: manifest.cols,
      seed: 5,
    });
    let worstRef = 0, worstIsa = 0, worstPlain = 0;
    for (const { w, n, T, k, seed } of cases) {
      const x = activations(T, k, seed);
      const r = reference(t, w, x, T, n, k);
      const yc = quantMatmul(0, w, dtype, x, T, n, k)!;
      for (let isa = 0; isa < isas.length; isa++) {
        const y = isa === 0 ? yc : quantMatmul(isa, w, dtype, x, T, n, k)!;
        const e = relErr(y, r);
        assert(e <= 1e-4, `${t} ${isas[isa]} n=${n} T=${T} k=${k}: relative error ${e}`);
        worstRef = Math.max(worstRef, e);
        for (let i = 0; i < y.length; i++) {
          const d = Math.abs(y[i] - yc[i]) / (Math.abs(r.ref[i]) + 0.01 * r.abs[i]);
          assert(d <= 1e-5, `${t}: ${isas[isa]} differs from c at ${i}: ${y[i]} vs ${yc[i]}`);
          worstIsa = Math.max(worstIsa, d);
          // the plain float product: off by at most the activations' rounding
          const slack = r.bound[i] + 1e-4 * Math.abs(r.ref[i]) + 1e-6 * r.abs[i];
          assert(
            Math.abs(y[i] - r.plain[i]) <= slack,
            `${t} ${isas[isa]}: ${y[i]} vs float ${r.plain[i]}, bound ${r.bound[i]}`,
          );
          worstPlain = Math.max(worstPlain, Math.abs(y[i] - r.plain[i]) / r.bound[i]);
        }
      }
      // the public entry (the table HEARTH_ISA / the CPU picks) is one of them
      const yp = quantMatmul(-1, w, dtype, x, T, n, k)!;
      assert(relErr(yp, r) <= 1e-4, `${t}: hearth_quant_matmul`);
    }
    worst[t] = `ref ${worstRef.toExponential(1)}, isa-vs-c ${worstIsa.toExponential(1)}, ` +
      `float err / bound ${worstPlain.toFixed(2)}`;
  }
  console.log(`tables: ${isas.join(", ")}`);
  for (const [t, s] of Object.entries(worst)) console.log(`  ${t}: ${s}`);
});

Deno.test("quant: a token's results are the same bits whatever T it comes with, on every table", () => {
  // The forward pass runs a decode alone (T = 1) or beside other sequences and prompt chunks (T > 1),
  // through different tile and GEMM paths: a seeded request must get the same tokens either way.
  const isas = isaNames();
  for (const t of TYPES) {
    const dtype = QTYPES[t];
    for (const [n, T, k] of [[13, 9, isKQuant(t) ? 768 : 800], [6, 40, isKQuant(t) ? 256 : 96]]) {
      const w = randomBlocks(t, n, k, 31 * dtype + n);
      const x = activations(T, k, 7 * dtype + T);
      for (let isa = 0; isa < isas.length; isa++) {
        const all = quantMatmul(isa, w, dtype, x, T, n, k)!;
        for (let tt = 0; tt < T; tt++) {
          const one = quantMatmul(isa, w, dtype, x.subarray(tt * k, (tt + 1) * k), 1, n, k)!;
          for (let r = 0; r < n; r++) {
            const a = all[tt * n + r], b = one[r];
            assert(
              Object.is(a, b),
              `${t} ${isas[isa]} n=${n} T=${T} k=${k}: token ${tt} row ${r}: ${a} alone ${b}`,
            );
          }
        }
      }
    }
  }
});

Deno.test("quant: packed layouts (where a table has one) match the reference, per token whatever T, from any panel", () => {
  // A table may keep weight matrices in a layout of its own (AVX2: panels of 8 rows; AVX-512 VNNI and
  // AMX: 16, whose AMX tiles take 16 tokens at a time and the VNNI products the rest); the forward pass
  // then multiplies slices of it from a panel boundary on. Same bounds as the plain products, and a
  // token's bits do not depend on the T it came with.
  const SLICE = 16; // HEARTH_QUANT_PANEL: every table's panel divides it
  const isas = isaNames();
  let checked = 0;
  for (const t of TYPES) {
    const dtype = QTYPES[t];
    for (let isa = 0; isa < isas.length; isa++) {
      for (const [n, T, k] of shapes(t)) {
        if (packBytes(isa, dtype, n, k) === 0) continue;
        const panel = packBytes(isa, dtype, 1, k) / rowBytes(dtype, k); // rows per panel
        assert(SLICE % panel === 0, `${t} ${isas[isa]}: panel of ${panel} rows`);
        assertEquals(
          packBytes(isa, dtype, n, k),
          Math.ceil(n / panel) * rowBytes(dtype, k) * panel,
          `${t} ${isas[isa]}`,
        );
        const w = randomBlocks(t, n, k, 1000 * dtype + n + T);
        const x = activations(T, k, 77 * dtype + T);
        const r = reference(t, w, x, T, n, k);
        const y = quantMatmulPacked(isa, w, dtype, x, T, n, k)!;
        const e = relErr(y, r);
        assert(e <= 1e-4, `${t} ${isas[isa]} packed n=${n} T=${T} k=${k}: relative error ${e}`);
        for (let tt = 0; tt < T; tt++) { // the same bits as the token alone
          const one = quantMatmulPacked(isa, w, dtype, x.subarray(tt * k, (tt + 1) * k), 1, n, k)!;
          for (let row = 0; row < n; row++) {
            assert(
              Object.is(y[tt * n + row], one[row]),
              `${t} ${isas[isa]} packed T=${T}: token ${tt} row ${row}`,
            );
          }
        }
        if (n > SLICE) { // a slice from a panel boundary on
          const tail = quantMatmulPacked(isa, w, dtype, x, T, n, k, SLICE);
          assert(tail, `${t} ${isas[isa]}: slice from row ${SLICE} refused`);
          for (let tt = 0; tt < T; tt++) {
            for (let row = SLICE; row < n; row++) {
              assert(
                Object.is(tail[tt * (n - SLICE) + row - SLICE], y[tt * n + row]),
                `${t} ${isas[isa]} slice row ${row}`,
              );
            }
          }
        }
        checked++;
      }
    }
  }
  console.log(`packed layouts checked: ${checked} (tables: ${isas.join(", ")})`);
});

Deno.test("quant: every table quantizes activations to the C table's bytes", () => {
  const isas = isaNames();
  const k = 1024, T = 3;
  const x = activations(T, k, 123);
  x.fill(0, 0, 32); // a zero block
  for (let i = 32; i < 64; i++) x[i] = (i - 48) + 0.5; // ties at every step: d = 15.5 / 127 ... and .5 codes
  for (let i = 64; i < 96; i++) x[i] = (i % 2 ? 1 : -1) * 1e-38; // 1 / d overflows: all codes 0
  for (let i = 256; i < 512; i++) x[i] = 127 * (i % 3 - 1); // exact integers, d = 1
  for (const t of ["q8_0", "q4_k"] as const) {
    const want = quantAct(QTYPES[t], x, T, k, 0);
    for (let isa = 1; isa < isas.length; isa++) {
      const got = quantAct(QTYPES[t], x, T, k, isa);
      const bad = want.findIndex((b, i) => b !== got[i]);
      assertEquals(bad, -1, `${t} ${isas[isa]}: byte ${bad} differs`);
    }
    const xd = dequantizeAct(QTYPES[t], want, T, k);
    for (let i = 0; i < 96; i++) if (i < 32 || i >= 64) assertEquals(xd[i], 0, `${t} ${i}`);
    for (let i = 256; i < 512; i++) assertEquals(xd[i], x[i], `${t} ${i}`);
  }
});

Deno.test("quant: matmul writes y with its stride and nothing else", () => {
  for (const t of TYPES) {
    const dtype = QTYPES[t];
    const [n, T, k] = [6, 5, isKQuant(t) ? 512 : 96];
    const w = randomBlocks(t, n, k, 31 + dtype);
    const x = activations(T, k, 9);
    const act = quantAct(dtype, x, T, k);
    const ldy = n + 3;
    for (let isa = -1; isa < isaNames().length; isa++) {
      const want = quantMatmul(isa, w, dtype, x, T, n, k)!;
      const y = new Float32Array(T * ldy).fill(-7);
      assertEquals(quantMatmulAct(isa, y, ldy, w, dtype, act, T, n, k), 0);
      for (let tt = 0; tt < T; tt++) {
        for (let r = 0; r < ldy; r++) {
          assertEquals(y[tt * ldy + r], r >= n ? -7 : want[tt * n + r], `${t} isa ${isa} t ${tt} r ${r}`);
        }
      }
    }
  }
});

Deno.test("quant: HEARTH_ISA picks the table like the float kernels", async () => {
  const mod = new URL("../../src/native/quant_testing.ts", import.meta.url).href;
  const names = isaNames();
  const plain = names.filter((n) => n !== "amx"); // HEARTH_ISA=avx512 never takes AMX
  const expect: Record<string, string> = {
    c: "c",
    avx2: names.includes("avx2") ? "avx2" : plain.at(-1)!,
    avx512: plain.at(-1)!,
    amx: names.at(-1)!,
  };
  for (const [want, got] of Object.entries(expect)) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", `import { chosenIsa } from "${mod}"; console.log(chosenIsa());`],
      env: { HEARTH_ISA: want },
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert(out.success);
    assertEquals(new TextDecoder().decode(out.stdout).trim(), got, `HEARTH_ISA=${want}`);
  }
  if (!Deno.env.get("HEARTH_ISA")) assertEquals(chosenIsa(), names.at(-1));
});

Deno.test("quant: quantize Q8_0 and Q4_0 bit-exactly as gguf", () => {
  const { rows, cols } = manifest;
  const src = readF32("quantize.src.f32");
  for (const t of ["q8_0", "q4_0"] as const) {
    const want = Deno.readFileSync(new URL(`${t}.quant.bin`, FIX));
    const got = quantize(QTYPES[t], src, rows, cols)!;
    assertEquals(got.length, want.length);
    const bad: number[] = [];
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) bad.push(i);
    assertEquals(bad.length, 0, `${t}: ${bad.length} bytes differ, first at ${bad[0]}`);
  }
});

/** RMS of (x - dequantize(quantize(x))) over RMS of x, per type. */
function roundTrip(t: QType, x: Float32Array, rows: number, k: number): { rel: number; deq: Float32Array } {
  const q = quantize(QTYPES[t], x, rows, k)!;
  const deq = dequantize(QTYPES[t], q, rows, k)!;
  let se = 0, sx = 0;
  for (let i = 0; i < x.length; i++) se += (x[i] - deq[i]) ** 2, sx += x[i] ** 2;
  return { rel: Math.sqrt(se / sx), deq };
}

Deno.test("quant: Q4_K quantize round-trips within its bound", () => {
  // Gaussian weights. A uniform 16-level grid spanning a sub-block's range R has RMS error
  // R / (15 sqrt(12)); 32 Gaussian samples span E[R] ~ 4.1 sigma, so a plain min/max grid gives ~0.079
  // sigma. The (scale, min) least-squares fit lowers that (0.073 measured), the 6-bit sub-block scales
  // and f16 super-scales add well under 1%. Bound: 0.085 sigma, and below Q4_0 on the same data (0.086).
  const rows = 64, k = 1024;
  const x = gaussian(rows * k, 4242, 0.02);
  const k4 = roundTrip("q4_k", x, rows, k).rel;
  const q40 = roundTrip("q4_0", x, rows, k).rel;
  const q80 = roundTrip("q8_0", x, rows, k).rel;
  console.log(`relative RMS error: q4_k ${k4.toFixed(4)}, q4_0 ${q40.toFixed(4)}, q8_0 ${q80.toFixed(5)}`);
  assert(k4 < 0.085, `q4_k relative RMS error ${k4}`);
  assert(k4 < q40, "q4_k should beat q4_0");
  assert(q80 < 0.01, `q8_0 relative RMS error ${q80}`);

  // the hard blocks of the gguf source: zeros stay zeros, and the error stays within 0.1 of each row's RMS
  const src = readF32("quantize.src.f32");
  const { rows: gr, cols } = manifest;
  const { deq } = roundTrip("q4_k", src, gr, cols);
  for (let i = 0; i < 32; i++) assertEquals(deq[i], 0);
  for (let r = 0; r < gr; r++) {
    let se = 0, sx = 0;
    for (let i = r * cols; i < (r + 1) * cols; i++) se += (src[i] - deq[i]) ** 2, sx += src[i] ** 2;
    assert(Math.sqrt(se / sx) < 0.1, `row ${r}: ${Math.sqrt(se / sx)}`);
  }
  // a constant sub-block is (nearly) exact, an all-positive one needs no min
  for (let i = 96; i < 128; i++) assert(Math.abs(deq[i] - 0.25) < 0.25 * 0.02, `const block ${deq[i]}`);
});

Deno.test("quant: bad sizes are refused", () => {
  for (const t of TYPES) {
    const dtype = QTYPES[t];
    const qk = BLOCK[t].elems;
    for (const bad of [qk + 16, qk - 1, 100, -qk]) {
      assertEquals(rowBytes(dtype, bad), 0, `${t} row_bytes(${bad})`);
      assertEquals(actBytes(dtype, 2, bad), 0, `${t} act_bytes(${bad})`);
    }
    const x = new Float32Array(qk + 8);
    const w = new Uint8Array(4096);
    assertEquals(quantMatmul(0, w, dtype, x, 1, 1, qk + 8), null);
    assertEquals(quantMatmul(-1, w, dtype, x, 1, 1, qk + 8), null);
    assertEquals(dequantize(dtype, w, 1, qk + 1), null);
    // the public matmul writes nothing for a bad k
    const y = new Float32Array(8).fill(-3);
    quantMatmulAct(-1, y, 1, w, dtype, new Uint8Array(4096), 1, 1, qk + 8);
    assert(y.every((v) => v === -3), `${t}: matmul with a bad k wrote`);
    assertEquals(quantMatmulAct(0, y, 1, w, dtype, new Uint8Array(4096), 1, 1, qk + 8), -1);
  }
  assertEquals(rowBytes(99, 256), 0);
  assertEquals(rowBytes(-1, 256), 0);
  assertEquals(actBytes(1, 1, 256), 0); // F16 weights take no quantized activations
  assertEquals(quantizeRowRaw(QTYPES.q4_1, new Float32Array(32), new Uint8Array(64), 32), -1);
  assertEquals(quantizeRowRaw(QTYPES.q8_0, new Float32Array(48), new Uint8Array(64), 48), -1);
  assertEquals(quantizeRowRaw(QTYPES.q4_k, new Float32Array(32), new Uint8Array(64), 32), -1);
  assertEquals(quantizeRowRaw(99, new Float32Array(32), new Uint8Array(64), 32), -1);
});

Deno.test("quant: the benchmark's repeated product runs the packed layout where the table has one, with the same result", () => {
  const isas = isaNames();
  for (const t of ["q8_0", "q4_k", "q6_k"] as const) {
    const dtype = QTYPES[t], n = 24, k = 512, T = 3;
    const w = randomBlocks(t, n, k, 5 + dtype);
    const x = activations(T, k, 9);
    const best = isas.length - 1;
    const y = new Float32Array(T * n);
    const r = matmulRepeat(best, w, dtype, x, y, T, n, k, 2);
    assertEquals(r.packed, packBytes(best, dtype, n, k) > 0, `${t} ${isas[best]}`);
    assert(r.seconds > 0, `${t}: ${r.seconds} s`);
    const e = relErr(y, reference(t, w, x, T, n, k));
    assert(e <= 1e-4, `${t} ${isas[best]}: relative error ${e}`);
  }
  assertThrows( // k = 30 is no whole number of Q8_0 blocks
    () =>
      matmulRepeat(
        0,
        new Uint8Array(34),
        QTYPES.q8_0,
        new Float32Array(30),
        new Float32Array(1),
        1,
        1,
        30,
        1,
      ),
    Error,
    "refused",
  );
});
