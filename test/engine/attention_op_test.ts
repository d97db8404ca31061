/**
 * The attention kernel (attend_chunk, kernels/cpu/ops_*.c) on every instruction set this CPU runs,
 * against the plain C table and against a float64 softmax: odd head sizes (the vector tables fall back to
 * C), chunks of 1 to 64 keys, query rows that see part of a chunk, all of it or none of it (causal masks,
 * sliding windows), GQA-sized row counts, and a running state carried over two chunks. With an f16 KV
 * cache the keys and values are read as f16: every table must give exactly the bits it gives on float32
 * keys and values of the same (f16-rounded) numbers, so the cache's element type changes only the
 * rounding of what is stored.
 */
import { assert, assertEquals } from "../assert.ts";
import { libraryFileName } from "../../build.ts";
import { ROOT, xorshift } from "./fixtures.ts";
import { f16Bits } from "../../src/model/gguf_write.ts";
import { f16ToNumber } from "../../src/native/quant_testing.ts";

const SYMBOLS = {
  hearth_test_ops_isa_name: { parameters: ["i32"], result: "pointer" },
  hearth_test_to_f16: { parameters: ["i32", "buffer", "buffer", "i64"], result: "i32" },
  hearth_test_attend_chunk: {
    parameters: [
      "i32", // isa
      "buffer", // acc (nq, hd)
      "buffer", // m (nq)
      "buffer", // l (nq)
      "buffer", // q (nq, hd)
      "i32", // nq
      "i32", // hd
      "buffer", // keys (nk, hd)
      "buffer", // values (nk, hd)
      "i32", // kv dtype: 0 float32, 1 f16
      "i32", // nk
      "buffer", // lo (nq)
      "buffer", // hi (nq)
      "f32", // scale
    ],
    result: "i32",
  },
} as const;

const lib = Deno.dlopen(Deno.env.get("HEARTH_LIB") ?? `${ROOT}lib/${libraryFileName()}`, SYMBOLS).symbols;

/** Tables present: index 0 is "c". */
const ISAS: [number, string][] = [0, 1, 2].flatMap((i) => {
  const p = lib.hearth_test_ops_isa_name(i);
  return p === null ? [] : [[i, Deno.UnsafePointerView.getCString(p)] as [number, string]];
});

/** A small deterministic generator, values in [-1, 1). */
function rng(seed: number): () => number {
  const u = xorshift(seed);
  return () => 2 * u() - 1;
}

interface Chunk {
  keys: Float32Array; // (nk, hd)
  values: Float32Array; // (nk, hd)
  nk: number;
  lo: Int32Array; // (nq)
  hi: Int32Array; // (nq)
}

interface State {
  acc: Float32Array; // (nq, hd)
  m: Float32Array; // (nq)
  l: Float32Array; // (nq)
}

/** f16 bits of each element (round to nearest even, as the cache stores them). */
const toF16 = (a: Float32Array) => Uint16Array.from(a, f16Bits);

function run(
  isa: number,
  q: Float32Array,
  nq: number,
  hd: number,
  chunks: Chunk[],
  scale: number,
  kvF16 = false,
): State {
  const s: State = {
    acc: new Float32Array(nq * hd),
    m: new Float32Array(nq).fill(-Infinity),
    l: new Float32Array(nq),
  };
  for (const c of chunks) {
    const rc = lib.hearth_test_attend_chunk(
      isa,
      s.acc,
      s.m,
      s.l,
      q,
      nq,
      hd,
      kvF16 ? toF16(c.keys) : c.keys,
      kvF16 ? toF16(c.values) : c.values,
      kvF16 ? 1 : 0,
      c.nk,
      c.lo,
      c.hi,
      scale,
    );
    assertEquals(rc, 0);
  }
  return s;
}

/** Softmax-weighted values of each row in float64 over every key it sees; null for a row that sees none. */
function reference(
  q: Float32Array,
  nq: number,
  hd: number,
  chunks: Chunk[],
  scale: number,
): (number[] | null)[] {
  return Array.from({ length: nq }, (_, r) => {
    const scores: number[] = [], vals: Float32Array[] = [];
    for (const c of chunks) {
      for (let j = c.lo[r]; j < c.hi[r]; j++) {
        let d = 0;
        for (let i = 0; i < hd; i++) d += q[r * hd + i] * c.keys[j * hd + i];
        scores.push(d * scale);
        vals.push(c.values.subarray(j * hd, (j + 1) * hd));
      }
    }
    if (scores.length === 0) return null;
    const mx = Math.max(...scores);
    const w = scores.map((s) => Math.exp(s - mx));
    const sum = w.reduce((a, b) => a + b, 0);
    const out = new Array(hd).fill(0);
    w.forEach((wj, j) => {
      for (let i = 0; i < hd; i++) out[i] += (wj / sum) * vals[j][i];
    });
    return out;
  });
}

function makeChunk(
  next: () => number,
  nq: number,
  hd: number,
  nk: number,
  pattern: string,
  r0: number,
): Chunk {
  const keys = Float32Array.from({ length: nk * hd }, () => next() * 2);
  const values = Float32Array.from({ length: nk * hd }, () => next());
  const lo = new Int32Array(nq), hi = new Int32Array(nq);
  for (let r = 0; r < nq; r++) {
    if (pattern === "all") [lo[r], hi[r]] = [0, nk];
    else if (pattern === "causal") {
      // Row r is a query at key index r0 + r of this chunk (as in a prefill tile on the diagonal).
      [lo[r], hi[r]] = [0, Math.max(0, Math.min(nk, r0 + r + 1))];
    } else if (pattern === "window") {
      const pos = r0 + r, first = pos + 1 - 5; // a sliding window of 5 keys
      [lo[r], hi[r]] = [Math.max(0, Math.min(nk, first)), Math.max(0, Math.min(nk, pos + 1))];
    } else { // random ranges, empty ones included
      const a = Math.floor((next() + 1) / 2 * (nk + 1)), b = Math.floor((next() + 1) / 2 * (nk + 1));
      [lo[r], hi[r]] = r % 4 === 3 ? [a, a] : [Math.min(a, b), Math.max(a, b)];
    }
  }
  return { keys, values, nk, lo, hi };
}

Deno.test(`attention op: every table (${ISAS.map((i) => i[1]).join(", ")}) agrees with C and with float64`, () => {
  assert(ISAS.length >= 1 && ISAS[0][1] === "c");
  let cases = 0;
  for (const hd of [16, 24, 32, 64, 128]) {
    for (const nq of [1, 2, 3, 5, 8, 30]) {
      for (const nk of [1, 7, 16, 17, 40, 63, 64]) {
        for (const pattern of ["all", "causal", "window", "random"]) {
          const next = rng(hd * 1_000_003 + nq * 1009 + nk * 7 + pattern.length);
          const q = Float32Array.from({ length: nq * hd }, () => next());
          // Two chunks: the second continues the first's running state (its rows sit nk keys later).
          const chunks = [
            makeChunk(next, nq, hd, nk, pattern, nk - nq),
            makeChunk(next, nq, hd, nk, pattern, -nq),
          ];
          const scale = 1 / Math.sqrt(hd);
          const want = reference(q, nq, hd, chunks, scale);
          const c = run(0, q, nq, hd, chunks, scale);
          for (const [isa, name] of ISAS) {
            const got = isa === 0 ? c : run(isa, q, nq, hd, chunks, scale);
            for (let r = 0; r < nq; r++) {
              const label = `${name} hd ${hd} nq ${nq} nk ${nk} ${pattern} row ${r}`;
              if (want[r] === null) {
                // A row that saw nothing keeps its state exactly.
                assertEquals(got.m[r], -Infinity, label);
                assertEquals(got.l[r], 0, label);
                for (let i = 0; i < hd; i++) assertEquals(got.acc[r * hd + i], 0, label);
                continue;
              }
              assert(Math.abs(got.m[r] - c.m[r]) <= 1e-5 * Math.max(1, Math.abs(c.m[r])), `${label}: max`);
              assert(Math.abs(got.l[r] - c.l[r]) <= 1e-5 * c.l[r], `${label}: sum ${got.l[r]} vs ${c.l[r]}`);
              for (let i = 0; i < hd; i++) {
                const o = got.acc[r * hd + i] / got.l[r];
                assert(Math.abs(o - want[r]![i]) <= 2e-6, `${label}: output ${i}: ${o} vs ${want[r]![i]}`);
              }
            }
          }
          cases++;
        }
      }
    }
  }
  assertEquals(cases, 5 * 6 * 7 * 4);
});

Deno.test(`attention op: f16 keys and values give the bits of float32 ones of the same values, every table`, () => {
  const round = (a: Float32Array) => Float32Array.from(a, (x) => f16ToNumber(f16Bits(x)));
  let cases = 0;
  for (const hd of [24, 64, 128]) {
    for (const nq of [1, 3, 8]) {
      for (const nk of [1, 17, 64]) {
        for (const pattern of ["all", "causal", "random"]) {
          const next = rng(hd * 7919 + nq * 31 + nk + pattern.length);
          const q = Float32Array.from({ length: nq * hd }, () => next());
          const chunks = [
            makeChunk(next, nq, hd, nk, pattern, nk - nq),
            makeChunk(next, nq, hd, nk, pattern, -nq),
          ].map((c) => ({ ...c, keys: round(c.keys), values: round(c.values) }));
          const scale = 1 / Math.sqrt(hd);
          for (const [isa, name] of ISAS) {
            const f32 = run(isa, q, nq, hd, chunks, scale, false);
            const f16 = run(isa, q, nq, hd, chunks, scale, true);
            const label = `${name} hd ${hd} nq ${nq} nk ${nk} ${pattern}`;
            assertEquals(Array.from(f16.m), Array.from(f32.m), `${label}: max`);
            assertEquals(Array.from(f16.l), Array.from(f32.l), `${label}: sum`);
            assertEquals(Array.from(f16.acc), Array.from(f32.acc), `${label}: outputs`);
          }
          cases++;
        }
      }
    }
  }
  assertEquals(cases, 3 * 3 * 3 * 3);
});

Deno.test("attention op: an unknown KV element type is refused", () => {
  const q = new Float32Array(16), kv = new Float32Array(16), lo = new Int32Array(1), hi = new Int32Array([1]);
  const rc = lib.hearth_test_attend_chunk(
    0,
    new Float32Array(16),
    new Float32Array(1),
    new Float32Array(1),
    q,
    1,
    16,
    kv,
    kv,
    2,
    1,
    lo,
    hi,
    1,
  );
  assertEquals(rc, -1);
});

Deno.test("KV cache f16 conversion: every table rounds like the scalar reference (ties, subnormals, overflow)", () => {
  const next = rng(12345);
  const special = [
    0,
    -0,
    1,
    -1,
    65504,
    65519.99,
    65520,
    -65520,
    1e6,
    2 ** -14,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    2 ** -20 * 1.5,
    Infinity,
    -Infinity,
    NaN,
  ];
  const src = Float32Array.from([
    ...special,
    ...Array.from({ length: 1000 }, (_, i) => next() * 2 ** ((i % 40) - 24)),
  ]);
  const want = Array.from(src, (x) => Number.isNaN(x) ? -1 : f16Bits(x));
  for (const [isa, name] of ISAS) {
    const dst = new Uint16Array(src.length);
    assertEquals(lib.hearth_test_to_f16(isa, dst, src, BigInt(src.length)), 0);
    for (let i = 0; i < src.length; i++) {
      if (want[i] === -1) {
        assert((dst[i] & 0x7c00) === 0x7c00 && (dst[i] & 0x3ff) !== 0, `${name}: NaN stays NaN`);
      } else {assertEquals(
          dst[i],
          want[i],
          `${name}: ${src[i]} -> ${dst[i].toString(16)} want ${want[i].toString(16)}`,
        );}
    }
  }
});
