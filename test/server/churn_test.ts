/**
 * Many clients coming and going: 1000 streaming requests (after 1500 to warm up), about half cut off by their client part-way,
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
    // A small KV cache (4096 tokens of this model) so the warm-up touches every page of it: with the
    // default 1 GiB, fresh blocks keep paging in for the whole run and look like a leak.
    const server = await startServer({
      args: ["--max-num-seqs", "16", "--kv-cache-memory", String(2 * 2 ** 20), "--log-level", "WARNING"],
    });
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
      // Warm up: JIT, the cache's pages, and V8's heap, which grows in steps for the first ~1500
      // requests on this load and then stays put (measured: 106, 123, 152, 156, 159, 159, 160 MiB
      // every 500 requests up to 4000).
      await run(1500, 32, 0);
      const before = rssBytes(server.child.pid);
      await run(500, 32, 1500);
      const half = rssBytes(server.child.pid);
      await run(500, 32, 2000);
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
      // A leak grows with the request count; the allocator and V8's heap settle. So the second 500
      // requests may add little, whatever the first 500 did while the heap found its size.
      const after = rssBytes(server.child.pid);
      const mib = (n: number) => (n / 2 ** 20).toFixed(1);
      console.log(text.split("\n").filter((l) => /^(process|hearth_js)/.test(l)).join("\n"));
      console.log(
        `RSS: ${mib(before)} MiB, +${mib(half - before)} after 500, +${mib(after - half)} after 1000`,
      );
      assert(after - before < 48 * 2 ** 20, `RSS grew by ${mib(after - before)} MiB over 1000 requests`);
      assert(
        after - half < 16 * 2 ** 20,
        `RSS grew by ${mib(after - half)} MiB over the second 500 requests`,
      );
    } finally {
      await server.stop();
    }
  },
});
