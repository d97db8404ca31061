import { assert, assertEquals, assertThrows } from "../../test/assert.ts";
import { KvBlockAllocator } from "./kv_allocator.ts";

Deno.test("KvBlockAllocator grows tables block by block and takes them back", () => {
  const a = new KvBlockAllocator(4, 16);
  const t: number[] = [];
  assert(a.ensure(t, 1));
  assertEquals(t.length, 1);
  assert(a.ensure(t, 16));
  assertEquals(t.length, 1, "16 slots fit in one block");
  assert(a.ensure(t, 17));
  assertEquals(t.length, 2);
  assertEquals(a.freeBlocks, 2);
  assertEquals(new Set(t).size, 2, "distinct blocks");
  a.release(t);
  assertEquals(t.length, 0);
  assertEquals(a.freeBlocks, 4);
});

Deno.test("KvBlockAllocator refuses what it cannot cover, changing nothing", () => {
  const a = new KvBlockAllocator(2, 8);
  const t: number[] = [];
  assertEquals(a.ensure(t, 17), false);
  assertEquals(t.length, 0);
  assertEquals(a.freeBlocks, 2);
  assertThrows(() => new KvBlockAllocator(0, 8), RangeError);
});
