/**
 * The engine's periodic stats line at INFO, the one vLLM logs every few seconds: prompt and generation
 * throughput since the last line, the batch, how much of the KV cache sequences hold, and the prefix
 * cache's hit rate (of the interval, and since start). An idle server stays quiet: a line is written
 * only when tokens were admitted or generated since the last one, or requests are running or waiting.
 * `/metrics` has the same counters for scraping; this is for the operator reading the journal.
 *
 * @module
 */

import { type EngineStats, kvCacheUsage } from "../engine/types.ts";
import type { Logger } from "./logger.ts";

const percent = (x: number) => `${(100 * x).toFixed(1)} %`;

/**
 * The line for the `seconds` from `prev` (null: from start) to `cur`, or null when nothing happened.
 * Prompt tokens are those admitted into the batch, prefix hits included.
 */
export function statsLine(prev: EngineStats | null, cur: EngineStats, seconds: number): string | null {
  const prompt = cur.promptTokens - (prev?.promptTokens ?? 0);
  const hits = cur.prefixHitTokens - (prev?.prefixHitTokens ?? 0);
  const generated = cur.generatedTokens - (prev?.generatedTokens ?? 0);
  const preempted = cur.preemptions - (prev?.preemptions ?? 0);
  if (prompt === 0 && generated === 0 && cur.running === 0 && cur.waiting === 0) return null;
  const rate = (n: number) => `${(seconds > 0 ? n / seconds : 0).toFixed(1)} tok/s`;
  const hitRate = prompt > 0 ? percent(hits / prompt) : "–";
  const overall = cur.promptTokens > 0 ? percent(cur.prefixHitTokens / cur.promptTokens) : "–";
  return `engine: prompt ${rate(prompt)}, generation ${rate(generated)}, running ${cur.running}, ` +
    `waiting ${cur.waiting}, KV cache ${percent(kvCacheUsage(cur))} used, prefix cache hit rate ${hitRate} ` +
    `(${overall} since start)` + (preempted > 0 ? `, ${preempted} preempted` : "");
}

/** Writes {@link statsLine} every `intervalSeconds` while started (0: never). */
export class StatsLog {
  #timer: ReturnType<typeof setInterval> | null = null;
  #prev: EngineStats | null = null;
  #at = 0;

  constructor(
    readonly stats: () => EngineStats | undefined,
    readonly logger: Logger,
    readonly intervalSeconds: number,
    readonly now: () => number = () => performance.now(),
  ) {}

  /** Starts the timer (it does not keep the process alive); no-op at interval 0 or without stats. */
  start(): void {
    if (this.intervalSeconds <= 0 || this.#timer !== null) return;
    const first = this.stats();
    if (first === undefined) return;
    this.#prev = first;
    this.#at = this.now();
    const timer = setInterval(() => this.tick(), this.intervalSeconds * 1000);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Logs the line for the time since the last tick (or start) and returns it (null: nothing to say). */
  tick(): string | null {
    const cur = this.stats();
    if (cur === undefined) return null;
    const t = this.now();
    const line = statsLine(this.#prev, cur, (t - this.#at) / 1000);
    this.#prev = cur;
    this.#at = t;
    if (line !== null) this.logger.info(line);
    return line;
  }

  /** Stops the timer (idempotent). */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
