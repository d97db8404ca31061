import { deepStrictEqual as assertEquals, rejects as assertRejects } from "node:assert/strict";
import { mergeAsync } from "./merge.ts";

async function* ticks(name: string, n: number, ms: number, log: string[]) {
  try {
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setTimeout(r, ms));
      yield `${name}${i}`;
    }
  } finally {
    log.push(`${name} closed`);
  }
}

Deno.test("mergeAsync yields every item of every source", async () => {
  const log: string[] = [];
  const out: string[] = [];
  for await (const x of mergeAsync([ticks("a", 3, 1, log), ticks("b", 2, 2, log)])) out.push(x);
  assertEquals(out.sort(), ["a0", "a1", "a2", "b0", "b1"]);
  assertEquals(log.sort(), ["a closed", "b closed"]);
});

Deno.test("leaving early closes every source", async () => {
  const log: string[] = [];
  for await (const _ of mergeAsync([ticks("a", 100, 1, log), ticks("b", 100, 1, log)])) break;
  assertEquals(log.sort(), ["a closed", "b closed"]);
});

Deno.test("an error in one source ends the others and is rethrown", async () => {
  const log: string[] = [];
  async function* boom(): AsyncGenerator<string> {
    await new Promise((r) => setTimeout(r, 3));
    yield* [];
    throw new Error("boom");
  }
  await assertRejects(async () => {
    for await (const _ of mergeAsync<string>([ticks("a", 100, 1, log), boom()])) { /* drain */ }
  }, /boom/);
  assertEquals(log, ["a closed"]);
});
