/**
 * The C sampler against a float64 reference written here from hearth.h's documented order
 * (temperature, top-k, top-p, min-p, draw): 64 sequences with one prompt and 64 seeds per step, the
 * raw logits returned beside the sampled tokens. Every sampled token must lie in the filtered set,
 * the filters must matter (without them tokens outside that set appear), and the frequencies must
 * follow the filtered distribution. The draws are keyed by (seed, position), so this is deterministic.
 */
import { assert, assertEquals } from "../assert.ts";
import { LogitsMode, type SequenceSampling, sequenceSampling, StepBatch } from "../../src/native/hearth.ts";
import { openFixture } from "./fixtures.ts";

const SEQS = 64;
const STEPS = 32;
const VOCAB = 512;
const PROMPT = [7]; // a flat enough next-token distribution on this fixture

interface Filters {
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
}

function sampling(seed: bigint, f: Filters): SequenceSampling {
  return sequenceSampling({
    seed,
    temperature: f.temperature,
    topP: f.topP ?? 1,
    topK: f.topK ?? 0,
    minP: f.minP ?? 0,
  });
}

/** The distribution the sampler should draw from, in float64: temperature, top-k, top-p, min-p. */
function reference(logits: ArrayLike<number>, f: Filters): Float64Array {
  const n = logits.length;
  let mx = -Infinity;
  for (let i = 0; i < n; i++) mx = Math.max(mx, logits[i]);
  const w = Float64Array.from({ length: n }, (_, i) => Math.exp((logits[i] - mx) / f.temperature));
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => w[b] - w[a] || a - b);
  let keep = order;
  if (f.topK && f.topK < n) keep = keep.slice(0, f.topK);
  if (f.topP !== undefined && f.topP < 1) {
    const mass = keep.reduce((s, i) => s + w[i], 0);
    let cum = 0, cut = keep.length;
    for (let j = 0; j < keep.length; j++) {
      cum += w[keep[j]];
      if (cum >= f.topP * mass) {
        cut = j + 1;
        break;
      }
    }
    keep = keep.slice(0, cut);
  }
  if (f.minP) keep = keep.filter((i) => w[i] >= f.minP!); // the best token has weight 1
  const q = new Float64Array(n);
  const mass = keep.reduce((s, i) => s + w[i], 0);
  for (const i of keep) q[i] = w[i] / mass;
  return q;
}

/** Samples SEQS × STEPS tokens with `f` (seeds from `seedBase`); returns the tokens and the raw logits. */
async function draw(f: Filters, seedBase: bigint): Promise<{ tokens: number[]; logits: Float32Array }> {
  const { ctx, close } = await openFixture("test/fixtures/models/llama-f32", {
    maxBatchSeqs: SEQS,
    maxBatchTokens: SEQS * PROMPT.length,
    threads: 2,
  });
  try {
    const batch = new StepBatch(ctx.options, VOCAB);
    const tokens: number[] = [];
    let logits: Float32Array | null = null;
    for (let step = 0; step < STEPS; step++) {
      batch.clear(LogitsMode.last);
      for (let s = 0; s < SEQS; s++) {
        batch.addSequence(PROMPT, 0, [s], sampling(seedBase + BigInt(step * SEQS + s), f));
      }
      await ctx.step(batch);
      logits ??= batch.logitsRow(0).slice();
      for (let s = 0; s < SEQS; s++) {
        // Every sequence saw the same prompt: the same logits, whatever its slot in the batch.
        if (step === 0) assertEquals(batch.logitsRow(s), logits, `row ${s}`);
        tokens.push(batch.outTokens[s]);
      }
    }
    return { tokens, logits: logits! };
  } finally {
    close();
  }
}

/** Half the L1 distance between the sampled frequencies and `q`. */
function totalVariation(tokens: number[], q: Float64Array): number {
  const freq = new Float64Array(q.length);
  for (const t of tokens) freq[t] += 1 / tokens.length;
  let d = 0;
  for (let i = 0; i < q.length; i++) d += Math.abs(freq[i] - q[i]);
  return d / 2;
}

const CASES: { name: string; filters: Filters }[] = [
  { name: "top-k 8", filters: { temperature: 1, topK: 8 } },
  // top-p alone: the nucleus is a share of the whole distribution's mass, not of some sorted window.
  { name: "top-p 0.3", filters: { temperature: 0.6, topP: 0.3 } },
  { name: "top-p 0.5", filters: { temperature: 1, topP: 0.5 } },
  { name: "min-p 0.25", filters: { temperature: 1, minP: 0.25 } },
  { name: "top-k 20, top-p 0.6, min-p 0.1", filters: { temperature: 0.7, topK: 20, topP: 0.6, minP: 0.1 } },
];

for (const { name, filters } of CASES) {
  Deno.test(`sampler: ${name} keeps only its tokens and draws them with the filtered probabilities`, async () => {
    const { tokens, logits } = await draw(filters, 1000n);
    const q = reference(logits, filters);
    const support = new Set([...q.keys()].filter((i) => q[i] > 0));
    assert(support.size >= 3 && support.size < VOCAB / 4, `${name}: a support of ${support.size} tokens`);
    for (const t of tokens) assert(support.has(t), `${name}: token ${t} is outside the filtered set`);
    const tv = totalVariation(tokens, q);
    assert(tv < 0.08, `${name}: total variation ${tv.toFixed(3)} from the reference`);
    // The filter matters: the same temperature without it draws tokens outside the set.
    const unfiltered = await draw({ temperature: filters.temperature }, 1000n);
    assert(unfiltered.tokens.some((t) => !support.has(t)), `${name}: no draw fell outside it anyway`);
  });
}

Deno.test("sampler: temperature reshapes the distribution (frequency of the top token within 4 sigma)", async () => {
  for (const temperature of [0.5, 1, 2]) {
    const { tokens, logits } = await draw({ temperature }, 7n);
    const q = reference(logits, { temperature });
    let best = 0;
    for (let i = 1; i < VOCAB; i++) if (logits[i] > logits[best]) best = i;
    const n = tokens.length;
    const seen = tokens.filter((t) => t === best).length / n;
    const sigma = Math.sqrt(q[best] * (1 - q[best]) / n);
    assert(
      Math.abs(seen - q[best]) < 4 * sigma,
      `T=${temperature}: top token drawn ${seen.toFixed(4)}, expected ${q[best].toFixed(4)} ± ${
        sigma.toFixed(4)
      }`,
    );
  }
});

Deno.test("sampler: temperature 0 is the argmax for every seed", async () => {
  const { tokens, logits } = await draw({ temperature: 0 }, 99n);
  let best = 0;
  for (let i = 1; i < VOCAB; i++) if (logits[i] > logits[best]) best = i;
  assert(tokens.every((t) => t === best));
});
