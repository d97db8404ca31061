/**
 * The native thread pool (kernels/cpu/threadpool.c) under stress: thousands of short parallel loops of
 * uneven tasks, with more threads than cores so that workers are descheduled mid-loop, wake up late and
 * find a newer loop (or none). After every loop each task
 * must have run exactly once, to its end, on a thread in range (hearth_test_pool checks on return). About
 * half the loops are ranged (one range of tasks per thread, the others taking from its end), interleaved
 * with loops of the shared counter.
 */
import { assertEquals } from "../assert.ts";
import { libraryFileName } from "../../build.ts";
import { ROOT } from "./fixtures.ts";

const lib = Deno.dlopen(Deno.env.get("HEARTH_LIB") ?? `${ROOT}lib/${libraryFileName()}`, {
  hearth_test_pool: { parameters: ["i32", "i32", "i32", "u32"], result: "i32" },
}).symbols;

for (const threads of [2, 3, 8]) {
  Deno.test(`pool: ${threads} threads, 20000 loops of 1 to 64 tasks: every task once, before the loop returns`, () => {
    assertEquals(lib.hearth_test_pool(threads, 20000, 64, 7 * threads), 0);
  });
}

Deno.test("pool: loops of many tiny tasks (the claim counter under contention)", () => {
  assertEquals(lib.hearth_test_pool(4, 2000, 4096, 99), 0);
});

Deno.test("pool: out-of-range arguments are refused, not run", () => {
  assertEquals(lib.hearth_test_pool(0, 10, 10, 1), -1);
  assertEquals(lib.hearth_test_pool(2, 10, 0, 1), -1);
  assertEquals(lib.hearth_test_pool(2, -1, 10, 1), -1);
});
