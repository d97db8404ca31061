/**
 * `GET /metrics`: the engine's counters in the Prometheus text format (what vLLM and llama-server
 * expose), plus the server's own request counts. Behind auth like every route but /health.
 *
 * @module
 */

import type { Context } from "hono";
import { kvCacheUsage } from "../../engine/types.ts";
import type { AppDeps, AppEnv } from "../context.ts";
import type { Lifecycle } from "../lifecycle.ts";

/** One metric: name, help text, type and value. */
type Metric = [name: string, help: string, type: "gauge" | "counter", value: number];

/** Renders metrics in the Prometheus text exposition format. */
export function prometheusText(metrics: Metric[]): string {
  return metrics.map(([name, help, type, value]) =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${Number.isFinite(value) ? value : 0}\n`
  ).join("");
}

/** `GET /metrics`. */
export function metrics(c: Context<AppEnv>, deps: AppDeps, lifecycle: Lifecycle): Response {
  const m: Metric[] = [[
    "hearth_requests_in_flight",
    "HTTP generation requests in flight",
    "gauge",
    lifecycle.inFlight,
  ]];
  const s = deps.generator.stats?.();
  if (s) {
    m.push(
      ["hearth_sequences_waiting", "sequences waiting for a place in the batch", "gauge", s.waiting],
      ["hearth_sequences_running", "sequences in the running batch", "gauge", s.running],
      ["hearth_kv_blocks_total", "KV cache blocks", "gauge", s.kvBlocksTotal],
      [
        "hearth_kv_blocks_free",
        "KV cache blocks free (or kept only for prefix reuse)",
        "gauge",
        s.kvBlocksFree,
      ],
      [
        "hearth_kv_cache_usage_ratio",
        "fraction of KV blocks held by sequences",
        "gauge",
        kvCacheUsage(s),
      ],
      ["hearth_preemptions_total", "sequences preempted for lack of KV blocks", "counter", s.preemptions],
      ["hearth_prompt_tokens_total", "prompt tokens admitted", "counter", s.promptTokens],
      [
        "hearth_prefix_cache_hit_tokens_total",
        "prompt tokens served from shared prefix blocks",
        "counter",
        s.prefixHitTokens,
      ],
      ["hearth_steps_total", "forward steps", "counter", s.steps],
      ["hearth_generation_tokens_total", "tokens generated", "counter", s.generatedTokens],
      ["hearth_step_seconds_total", "seconds in forward steps", "counter", s.stepSeconds],
      [
        "hearth_between_steps_seconds_total",
        "seconds from one forward step's end to the next one's start while busy (scheduling)",
        "counter",
        s.betweenStepsSeconds,
      ],
      [
        "hearth_step_turn_seconds_total",
        "seconds of steps run with one thread fewer while the event loop turned (HTTP and SSE work)",
        "counter",
        s.turnSeconds,
      ],
      [
        "hearth_step_turn_cpu_seconds_total",
        "the JS thread's own CPU seconds in those turns (the rest: other processes on its core)",
        "counter",
        s.turnCpuSeconds,
      ],
      [
        "hearth_prefill_ms_per_token",
        "time per token of recent big steps (ms), which sizes prompt chunks beside decoding sequences",
        "gauge",
        s.prefillMsPerToken,
      ],
      [
        "hearth_paced_steps_total",
        "steps whose prompt chunk was cut to --prefill-chunk-ms beside decoding sequences",
        "counter",
        s.pacedSteps,
      ],
    );
  }
  const mem = Deno.memoryUsage();
  m.push(
    ["process_resident_memory_bytes", "resident set size of the server process", "gauge", mem.rss],
    ["hearth_js_heap_used_bytes", "JavaScript heap in use", "gauge", mem.heapUsed],
    ["hearth_js_external_bytes", "memory held by JavaScript objects outside the heap", "gauge", mem.external],
  );
  return c.text(prometheusText(m), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
}
