import { assert, assertEquals, assertThrows } from "../../test/assert.ts";
import { blockHash, KvBlockAllocator } from "./kv_allocator.ts";

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

Deno.test("KvBlockAllocator shares published blocks by hash and keeps them until their slot is needed", () => {
  const a = new KvBlockAllocator(3, 4);
  const tokens = [1, 2, 3, 4, 5, 6, 7, 8];
  const h0 = blockHash("", tokens, 0, 4);
  const h1 = blockHash(h0, tokens, 4, 8);
  assertEquals(h0, blockHash("", [1, 2, 3, 4], 0, 4), "same tokens, same hash");
  assert(h1 !== blockHash("", tokens, 4, 8), "the hash depends on everything before the block");
  const first: number[] = [];
  assert(a.ensure(first, 8));
  const [b0, b1] = first;
  a.publish(b0, h0);
  a.publish(b1, h1);
  const second = [a.share(h0)!];
  assertEquals(second, [b0]);
  a.release(first); // b0 still held by `second`; b1 idle but findable
  assertEquals(a.freeBlocks, 2);
  assertEquals(a.share(h1), b1, "an idle block is found again");
  second.push(b1);
  a.release(second);
  assertEquals(a.freeBlocks, 3);
  // Needing every slot evicts the idle named blocks, and their names with them.
  const big: number[] = [];
  assert(a.ensure(big, 12));
  assertEquals(a.share(h0), undefined);
  assertEquals(a.share(h1), undefined);
  a.release(big);
  assertEquals(a.freeBlocks, 3);
});
