/**
 * Many clients coming and going: 1000 streaming requests, about half cut off by their client part-way,
 * through the real server. Afterwards every KV block is back, nothing is running or waiting, and the
 * server's resident memory has not grown beyond noise.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startServer } from "./process.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`no ${name} in /metrics:\n${text}`);
  return Number(m[1]);
}

Deno.test({
  ...opts,
  name: "1000 requests with random disconnects leave the KV cache empty and memory flat",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const server = await startServer({ args: ["--max-num-seqs", "16", "--log-level", "WARNING"] });
    const headers = { "content-type": "application/json", authorization: `Bearer ${server.token}` };
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const one = async (i: number) => {
      const ac = new AbortController();
      const cutAfter = rand() < 0.5 ? 1 + Math.floor(rand() * 5) : Infinity;
      try {
        const res = await fetch(`${server.url}/v1/completions`, {
          method: "POST",
          headers,
          signal: ac.signal,
          body: JSON.stringify({
            prompt: `Request ${i}: once upon a time`,
            max_tokens: 4 + Math.floor(rand() * 28),
            ignore_eos: true,
            stream: true,
            temperature: 0.8,
            seed: i,
          }),
        });
        assertEquals(res.status, 200);
        const reader = res.body!.getReader();
        for (let chunks = 0;; chunks++) {
          if (chunks >= cutAfter) {
            ac.abort();
            break;
          }
          const { done } = await reader.read();
          if (done) break;
        }
      } catch (e) {
        if ((e as Error).name !== "AbortError") throw e;
      }
    };
    const run = async (count: number, concurrency: number, offset: number) => {
      let next = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < count) await one(offset + next++);
      }));
    };
    try {
      await run(100, 32, 0); // warm up: JIT, pools, the cache's pages
      const before = rssBytes(server.child.pid);
      await run(1000, 32, 100);
      // Cancellations are reaped at the next step boundary: give the loop a moment to settle.
      let text = "";
      for (let tries = 0; tries < 50; tries++) {
        const res = await fetch(`${server.url}/metrics`, { headers });
        text = await res.text();
        if (
          metric(text, "hearth_sequences_running") === 0 && metric(text, "hearth_requests_in_flight") === 0
        ) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assertEquals(metric(text, "hearth_sequences_running"), 0);
      assertEquals(metric(text, "hearth_sequences_waiting"), 0);
      assertEquals(metric(text, "hearth_kv_blocks_free"), metric(text, "hearth_kv_blocks_total"));
      const grown = rssBytes(server.child.pid) - before;
      assert(grown < 48 * 2 ** 20, `RSS grew by ${(grown / 2 ** 20).toFixed(1)} MiB over 1000 requests`);
    } finally {
      await server.stop();
    }
  },
});
