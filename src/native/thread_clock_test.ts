import { assert } from "../../test/assert.ts";
import { threadCpuClock } from "./thread_clock.ts";

Deno.test("thread clock: counts this thread's work, not its sleep", async () => {
  if (Deno.build.os !== "linux") return; // the only platform the tests must cover
  assert(threadCpuClock !== null, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) should open on Linux");
  const c0 = threadCpuClock();
  const w0 = performance.now();
  while (performance.now() - w0 < 30) { /* busy */ }
  const c1 = threadCpuClock();
  const wall = performance.now() - w0;
  // Never more than the wall time; less only by what other processes took of this core meanwhile.
  assert(c1 - c0 > 3 && c1 - c0 <= wall + 1, `${wall} ms of busy work counted as ${c1 - c0} ms`);
  await new Promise((r) => setTimeout(r, 50));
  const c2 = threadCpuClock();
  assert(c2 - c1 < 10, `50 ms asleep counted as ${c2 - c1} ms`);
});
