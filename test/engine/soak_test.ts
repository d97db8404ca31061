/**
 * The scheduler's features at once, on seeded random traffic: requests arriving at random times with
 * prompts that share system prompts of whole and partial blocks (prefix reuse), a KV cache too small for
 * them all (preemption and recompute), prompts longer than a step's token budget (chunked prefill),
 * greedy and seeded sampled requests with penalties, and clients that leave early. Every token must be
 * the one the request gets alone on a plain engine, and the cache must be empty afterwards.
 *
 * HEARTH_SOAK_SEEDS=a-b runs other seeds (the suite runs a few).
 */
import { assert, assertEquals } from "../assert.ts";
import { Engine } from "../../src/engine/engine.ts";
import type { GenerateParams } from "../../src/engine/types.ts";
import { rng } from "../../src/native/quant_testing.ts";
import { ROOT } from "./fixtures.ts";

const VOCAB = 500; // ids 6..505 are ordinary tokens of the fixture's vocabulary
const BLOCK = 16;
/** KV blocks of the engine under test: fewer than the traffic needs at once. */
const BLOCKS = 8;

interface SoakRequest {
  prompt: number[];
  params: Partial<GenerateParams>;
  /** Tokens after which the client leaves, or null to read to the end. */
  leaveAfter: number | null;
  /** ms after the start at which it arrives. */
  arrival: number;
}

/** n requests of seeded random shapes. */
function traffic(seed: number, n: number): SoakRequest[] {
  const r = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const ids = (len: number) => Array.from({ length: len }, () => 6 + int(0, VOCAB - 1));
  // System prompts of 0, part of one, exactly two and part of three blocks.
  const systems = [[], ids(BLOCK - 5), ids(2 * BLOCK), ids(2 * BLOCK + 9)];
  return Array.from({ length: n }, (_, i) => {
    const prompt = [...systems[int(0, systems.length - 1)], ...ids(int(1, 30))];
    const sampled = r() < 0.5;
    const maxTokens = int(1, 24);
    const params: Partial<GenerateParams> = sampled
      ? {
        temperature: 0.9,
        topP: r() < 0.5 ? 0.9 : 1,
        topK: r() < 0.5 ? 20 : 0,
        seed: seed * 1000 + i,
        presencePenalty: r() < 0.3 ? 0.5 : 0,
        repetitionPenalty: r() < 0.3 ? 1.2 : 1,
        maxTokens,
        ignoreEos: r() < 0.7,
      }
      : { temperature: 0, repetitionPenalty: 1, maxTokens, ignoreEos: r() < 0.7 };
    return {
      prompt,
      params,
      leaveAfter: r() < 0.25 ? int(1, maxTokens) : null,
      arrival: int(0, 150),
    };
  });
}

async function tokensOf(engine: Engine, req: SoakRequest, leave: boolean): Promise<number[]> {
  const out: number[] = [];
  const ac = new AbortController();
  for await (const t of engine.generate(req.prompt, req.params, ac.signal)) {
    out.push(t.id);
    if (leave && req.leaveAfter !== null && out.length === req.leaveAfter) {
      // Half the leavers abort their signal, half stop reading (the loop's return).
      if (req.leaveAfter % 2 === 0) ac.abort();
      else break;
    }
  }
  return out;
}

function seeds(): number[] {
  const spec = Deno.env.get("HEARTH_SOAK_SEEDS");
  if (!spec) return [1, 2];
  const [a, b] = spec.split("-").map(Number);
  return Array.from({ length: (b ?? a) - a + 1 }, (_, i) => a + i);
}

/** The engines compared: each model's plain one-at-a-time engine and the busy one under test. */
const CASES: { name: string; model: string; quantize?: "q8_0" }[] = [
  { name: "llama f32", model: "llama-f32" },
  { name: "mistral with a sliding window of 8", model: "mistral-sw-f32" },
  { name: "llama quantized to q8_0 (f16 KV cache)", model: "llama-f32", quantize: "q8_0" },
];

for (const c of CASES) {
  Deno.test(`soak (${c.name}): random arrivals, shared prefixes, preemption, chunked prefill and leavers give each request's tokens alone`, async () => {
    const model = `${ROOT}test/fixtures/models/${c.model}`;
    const plain = await Engine.load(model, {
      threads: 1,
      quantize: c.quantize,
      prefixCaching: false,
      kvBlockSize: BLOCK,
    });
    // BLOCKS blocks of 16 for up to 8 sequences of up to 95 + 24 tokens: preemption is certain; 24 tokens a step.
    const busy = await Engine.load(model, {
      threads: 2,
      quantize: c.quantize,
      kvBlockSize: BLOCK,
      kvCacheTokens: BLOCKS * BLOCK,
      maxModelLen: BLOCKS * BLOCK,
      maxBatchTokens: 24,
      maxBatchSeqs: 8,
      maxWaiting: 1000,
      prefillChunkMs: 0,
    });
    try {
      for (const seed of seeds()) {
        const reqs = traffic(seed, 48);
        const alone: number[][] = [];
        for (const req of reqs) alone.push(await tokensOf(plain, req, false));
        const t0 = performance.now();
        const got = await Promise.all(reqs.map(async (req) => {
          const wait = req.arrival - (performance.now() - t0);
          if (wait > 0) await new Promise((res) => setTimeout(res, wait));
          return tokensOf(busy, req, true);
        }));
        reqs.forEach((req, i) => {
          const want = req.leaveAfter === null ? alone[i] : alone[i].slice(0, req.leaveAfter);
          assertEquals(got[i], want, `seed ${seed}, request ${i}: ${JSON.stringify(req.params)}`);
        });
        // One more request runs a step after the last leaver, reaping it.
        for await (const _ of busy.generate([7], { maxTokens: 1 })) { /* reaps */ }
        assertEquals(busy.freeKvBlocks, BLOCKS, `seed ${seed}: every block back`);
      }
      assert(
        busy.preemptions > 0,
        "the cache was too small for the traffic: something must have been preempted",
      );
      assert(busy.prefixStats.hitTokens > 0, "shared system prompts must have been found in the cache");
    } finally {
      await plain.close();
      await busy.close();
    }
  });
}
