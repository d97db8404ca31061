import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Lifecycle } from "./lifecycle.ts";

Deno.test("states go loading -> ready -> draining", () => {
  const l = new Lifecycle();
  assertEquals(l.state, "loading");
  l.ready();
  assertEquals(l.state, "ready");
  l.drain();
  l.ready();
  assertEquals(l.state, "draining");
});

Deno.test("in-flight counting and idle waiting", async () => {
  const l = new Lifecycle("ready");
  const end1 = l.begin();
  const end2 = l.begin();
  assertEquals(l.inFlight, 2);
  let idle = false;
  const waiting = l.whenIdle().then(() => (idle = true));
  end1();
  end1(); // idempotent
  await Promise.resolve();
  assertEquals([l.inFlight, idle], [1, false]);
  end2();
  await waiting;
  assertEquals(idle, true);
});

Deno.test("abortAll aborts the shutdown signal", () => {
  const l = new Lifecycle("ready");
  assertEquals(l.shutdownSignal.aborted, false);
  l.abortAll();
  assertEquals(l.shutdownSignal.aborted, true);
});
