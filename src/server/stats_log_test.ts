import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { EngineStats } from "../engine/types.ts";
import { Logger } from "./logger.ts";
import { statsLine, StatsLog } from "./stats_log.ts";

const idle: EngineStats = {
  waiting: 0,
  running: 0,
  kvBlocksTotal: 100,
  kvBlocksFree: 100,
  preemptions: 0,
  promptTokens: 0,
  prefixHitTokens: 0,
  steps: 0,
  generatedTokens: 0,
  stepSeconds: 0,
  betweenStepsSeconds: 0,
  turnSeconds: 0,
  turnCpuSeconds: 0,
  prefillMsPerToken: NaN,
  pacedSteps: 0,
};

Deno.test("stats line: throughput of the interval, batch, KV use, hit rates of the interval and overall", () => {
  const prev = { ...idle, promptTokens: 1000, prefixHitTokens: 800, generatedTokens: 50 };
  const cur = {
    ...prev,
    running: 3,
    waiting: 1,
    kvBlocksFree: 58,
    promptTokens: 1400,
    prefixHitTokens: 900,
    generatedTokens: 250,
    preemptions: 2,
  };
  assertEquals(
    statsLine(prev, cur, 10),
    "engine: prompt 40.0 tok/s, generation 20.0 tok/s, running 3, waiting 1, KV cache 42.0 % used, " +
      "prefix cache hit rate 25.0 % (64.3 % since start), 2 preempted",
  );
});

Deno.test("stats line: nothing while idle; a queue alone is worth a line", () => {
  assertEquals(statsLine(idle, idle, 10), null);
  const stuck = statsLine(idle, { ...idle, waiting: 4 }, 10);
  assertEquals(
    stuck,
    "engine: prompt 0.0 tok/s, generation 0.0 tok/s, running 0, waiting 4, KV cache 0.0 % used, " +
      "prefix cache hit rate – (– since start)",
  );
});

Deno.test("stats log: each tick covers the time since the last one, on the injected clock", () => {
  const lines: string[] = [];
  let stats = { ...idle };
  let clock = 0;
  const log = new StatsLog(() => stats, new Logger({ sink: (l) => lines.push(l) }), 5, () => clock);
  log.start();
  try {
    clock = 5000;
    stats = { ...stats, promptTokens: 100, generatedTokens: 10, running: 1 };
    assert(log.tick()?.startsWith("engine: prompt 20.0 tok/s, generation 2.0 tok/s, running 1"));
    clock = 7000;
    stats = { ...stats, generatedTokens: 30, running: 0 };
    assert(log.tick()?.startsWith("engine: prompt 0.0 tok/s, generation 10.0 tok/s, running 0"));
    clock = 12000;
    assertEquals(log.tick(), null); // idle: quiet
    assertEquals(lines.length, 2);
    assert(lines.every((l) => l.includes("INFO")));
  } finally {
    log.stop();
  }
});

Deno.test("stats log: interval 0, or an engine without stats, starts nothing", () => {
  const quiet = new StatsLog(() => idle, new Logger({ sink: () => {} }), 0);
  quiet.start();
  quiet.stop();
  const none = new StatsLog(() => undefined, new Logger({ sink: () => {} }), 10);
  none.start();
  assertEquals(none.tick(), null);
  none.stop();
});
