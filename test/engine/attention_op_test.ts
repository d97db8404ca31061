/**
 * The attention kernel (attend_chunk, kernels/cpu/ops_*.c) on every instruction set this CPU runs,
 * against the plain C table and against a float64 softmax: odd head sizes (the vector tables fall back to
 * C), chunks of 1 to 64 keys, query rows that see part of a chunk, all of it or none of it (causal masks,
 * sliding windows), GQA-sized row counts, and a running state carried over two chunks.
 */
import { assert, assertEquals } from "../assert.ts";
import { libraryFileName } from "../../build.ts";
import { ROOT } from "./fixtures.ts";

const SYMBOLS = {
  hearth_test_ops_isa_name: { parameters: ["i32"], result: "pointer" },
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

/** A small deterministic generator (xorshift), values in [-1, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 31 - 1;
  };
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

function run(isa: number, q: Float32Array, nq: number, hd: number, chunks: Chunk[], scale: number): State {
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
      c.keys,
      c.values,
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
