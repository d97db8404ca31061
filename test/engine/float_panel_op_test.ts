/**
 * The float kernels' panels of 4 rows (kernels/cpu/ops_simd.inc: ops_pack, ops_matmul_packed,
 * ops_unpack_row), on every instruction set this CPU runs that has them: a matrix in panels gives the
 * same products bit for bit as the same table's matmul on its rows (every dtype, row counts that leave
 * the last panel short, 1 to 5 tokens), and every row comes back out of the panels as stored. Shapes the
 * layout does not take (k not a multiple of the vector) are refused, so the matrix stays as stored.
 */
import { assert, assertEquals } from "../assert.ts";
import { libraryFileName } from "../../build.ts";
import { ROOT, xorshift } from "./fixtures.ts";

const lib = Deno.dlopen(
  Deno.env.get("HEARTH_LIB") ?? `${ROOT}lib/${libraryFileName()}`,
  {
    hearth_test_ops_isa_name: { parameters: ["i32"], result: "pointer" },
    hearth_test_float_panels: {
      parameters: ["i32", "buffer", "buffer", "buffer", "buffer", "i32", "buffer", "i64", "i64", "i64"],
      result: "i32",
    },
  } as const,
).symbols;

const ISAS: [number, string][] = [0, 1, 2].flatMap((i) => {
  const p = lib.hearth_test_ops_isa_name(i);
  return p === null ? [] : [[i, Deno.UnsafePointerView.getCString(p)] as [number, string]];
});

const DTYPES = { f32: 0, f16: 1, bf16: 2 } as const;

/** n x k weights of dtype with small random values, and the floats they stand for. */
function weights(dtype: keyof typeof DTYPES, n: number, k: number, seed: number) {
  const r = xorshift(seed);
  const f = Float32Array.from({ length: n * k }, () => Math.round((r() * 2 - 1) * 256) / 256);
  if (dtype === "f32") return { bytes: new Uint8Array(f.buffer), values: f };
  // f16 and bf16 hold these values exactly (at most 9 significant bits).
  const bits = new Uint16Array(n * k);
  const f32 = new Uint32Array(f.buffer);
  for (let i = 0; i < bits.length; i++) {
    if (dtype === "bf16") bits[i] = f32[i] >>> 16;
    else {
      const v = f[i], a = Math.abs(v);
      if (a === 0) bits[i] = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
      else {
        const e = Math.floor(Math.log2(a));
        const sign = v < 0 ? 0x8000 : 0;
        if (e < -14) bits[i] = sign | Math.round(a / 2 ** -24); // subnormal
        else bits[i] = sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
      }
    }
  }
  return { bytes: new Uint8Array(bits.buffer), values: f };
}

Deno.test("float panels: the same products bit for bit as the rows, and the rows back out, on every table", () => {
  let checked = 0;
  for (const [isa, name] of ISAS) {
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      for (const [n, k] of [[1, 16], [3, 32], [4, 64], [5, 48], [13, 576], [64, 128]]) {
        for (const T of [1, 2, 3, 5]) {
          const w = weights(dtype, n, k, n * 1000 + k + T);
          const r = xorshift(k + T);
          const x = Float32Array.from({ length: T * k }, () => r() * 2 - 1);
          const yPacked = new Float32Array(T * n),
            yRows = new Float32Array(T * n),
            rows = new Float32Array(n * k);
          const rc = lib.hearth_test_float_panels(
            isa,
            yPacked,
            yRows,
            rows,
            w.bytes,
            DTYPES[dtype],
            x,
            BigInt(T),
            BigInt(n),
            BigInt(k),
          );
          const what = `${name} ${dtype} n=${n} k=${k} T=${T}`;
          if (name === "c") {
            assertEquals(rc, 1, `${what}: the C table keeps matrices as stored`);
            continue;
          }
          assertEquals(rc, 0, what);
          assertEquals(Array.from(yPacked), Array.from(yRows), what);
          assertEquals(Array.from(rows), Array.from(w.values), `${what}: rows unpacked`);
          checked++;
        }
      }
    }
  }
  if (ISAS.some(([, name]) => name !== "c")) assert(checked > 0);
});

Deno.test("float panels: k not a multiple of the vector is refused (the matrix stays as stored)", () => {
  for (const [isa, name] of ISAS) {
    if (name === "c") continue;
    const w = weights("f32", 4, 20, 1);
    const out = new Float32Array(4 * 20);
    const rc = lib.hearth_test_float_panels(
      isa,
      out,
      out,
      out,
      w.bytes,
      0,
      new Float32Array(20),
      1n,
      4n,
      20n,
    );
    assertEquals(rc, 1, name);
  }
  assertEquals(
    lib.hearth_test_float_panels(
      9,
      new Float32Array(1),
      new Float32Array(1),
      new Float32Array(1),
      new Uint8Array(4),
      0,
      new Float32Array(1),
      1n,
      1n,
      1n,
    ),
    -1,
  );
});
