/**
 * The greedy pick (argmax, kernels/cpu/ops_*.c) on every instruction set this CPU runs, against the
 * scalar loop the sampler used before (`best = 0; if (w[i] > w[best]) best = i`): the first index of the
 * largest value, NaNs never winning, w[0] NaN giving 0, every value -inf giving 0, ties at any lane and
 * in the scalar tail, signed zeros, lengths around the vector widths and a whole vocabulary.
 */
import { assertEquals } from "../assert.ts";
import { libraryFileName } from "../../build.ts";
import { ROOT, xorshift } from "./fixtures.ts";

const lib = Deno.dlopen(
  Deno.env.get("HEARTH_LIB") ?? `${ROOT}lib/${libraryFileName()}`,
  {
    hearth_test_ops_isa_name: { parameters: ["i32"], result: "pointer" },
    hearth_test_argmax: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  } as const,
).symbols;

const ISAS: [number, string][] = [0, 1, 2].flatMap((i) => {
  const p = lib.hearth_test_ops_isa_name(i);
  return p === null ? [] : [[i, Deno.UnsafePointerView.getCString(p)] as [number, string]];
});

function reference(w: Float32Array): number {
  let best = 0;
  for (let i = 1; i < w.length; i++) if (w[i] > w[best]) best = i;
  return best;
}

/** Arrays that probe the edge cases, each with a name for the failure message. */
function cases(): [string, Float32Array][] {
  const out: [string, Float32Array][] = [];
  const r = xorshift(7);
  for (const n of [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 1000, 49152]) {
    const base = () => Float32Array.from({ length: n }, () => Math.round((r() * 2 - 1) * 1000) / 100);
    out.push([`random n=${n}`, base()]);
    const tie = base(), max = Math.max(...tie) + 1;
    for (let k = 0; k < 3; k++) tie[Math.floor(r() * n)] = max; // ties: the first must win
    out.push([`ties n=${n}`, tie]);
    const tail = base();
    tail[n - 1] = Math.max(...tail) + 1; // the largest in the scalar tail
    out.push([`largest last n=${n}`, tail]);
    const nan = base();
    for (let k = 0; k < Math.max(1, n >> 3); k++) nan[1 + Math.floor(r() * (n - 1))] = NaN;
    out.push([`NaNs n=${n}`, nan]);
    const first = base();
    first[0] = NaN;
    out.push([`w[0] NaN n=${n}`, first]);
    out.push([`all -inf n=${n}`, new Float32Array(n).fill(-Infinity)]);
    const banned = new Float32Array(n).fill(-Infinity);
    banned[Math.floor(r() * n)] = -3; // one token left
    out.push([`one left n=${n}`, banned]);
    const zeros = new Float32Array(n).fill(-1);
    zeros[Math.floor(r() * n)] = -0;
    zeros[Math.floor(r() * n)] = 0;
    out.push([`signed zeros n=${n}`, zeros]);
    const inf = base();
    inf[Math.floor(r() * n)] = Infinity;
    out.push([`+inf n=${n}`, inf]);
  }
  return out;
}

Deno.test(`argmax op: every table (${ISAS.map((i) => i[1]).join(", ")}) picks what the scalar loop picks`, () => {
  for (const [name, w] of cases()) {
    const want = reference(w);
    for (const [isa, isaName] of ISAS) {
      assertEquals(lib.hearth_test_argmax(isa, w, w.length), want, `${isaName}: ${name}`);
    }
  }
});

Deno.test("argmax op: an empty row or an absent table is refused", () => {
  assertEquals(lib.hearth_test_argmax(0, new Float32Array(4), 0), -1);
  assertEquals(lib.hearth_test_argmax(9, new Float32Array(4), 4), -1);
});
