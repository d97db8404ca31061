import assert from "node:assert/strict";
import { DtypeOptionError, parseDtypeOption } from "./dtype_option.ts";

Deno.test("every accepted spelling maps to its dtype", () => {
  const cases: [string, string][] = [
    ["auto", "auto"],
    ["float32", "f32"],
    ["fp32", "f32"],
    ["f32", "f32"],
    ["float16", "f16"],
    ["fp16", "f16"],
    ["half", "f16"],
    ["f16", "f16"],
    ["bfloat16", "bf16"],
    ["bf16", "bf16"],
    ["BF16", "bf16"],
    [" Float32 ", "f32"],
  ];
  for (const [s, dtype] of cases) assert.deepEqual(parseDtypeOption(s), { dtype }, s);
});

Deno.test("float64 spellings are served as float32 with a warning", () => {
  for (const s of ["float64", "fp64", "double"]) {
    assert.deepEqual(parseDtypeOption(s), { dtype: "f32", warning: "float64 is served as float32" });
  }
});

Deno.test("anything else is rejected, listing the accepted spellings", () => {
  for (const s of ["int8", "", "float", "f8"]) {
    assert.throws(() => parseDtypeOption(s), (e: unknown) => {
      assert.ok(e instanceof DtypeOptionError);
      assert.ok(e.message.startsWith(`unknown dtype ${JSON.stringify(s)}; accepted: auto, float32, fp32`));
      assert.ok(e.message.includes("bfloat16, bf16, float64, fp64, double"));
      return true;
    });
  }
});
