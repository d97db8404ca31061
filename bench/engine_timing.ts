/**
 * What the engine benchmarks share: medians, seeded random prompts, and timing a prefill or a decode
 * through Engine.generate (bench:engine on the CPU, bench:cuda on a GPU).
 *
 * @module
 */
import type { Engine } from "../src/engine/engine.ts";

/** The middle sample (NaN for none). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)];
}

/** `n` token ids in [0, vocab) from a seeded linear congruential sequence. */
export function randomPrompt(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => (s = (s * 1103515245 + 12345) % 2147483648) % vocab);
}

/** Seconds until the first token of a `len`-token prompt (the prefill step, plus one sample). */
export async function prefillSeconds(engine: Engine, len: number, seed: number): Promise<number> {
  const t0 = performance.now();
  for await (
    const _ of engine.generate(randomPrompt(len, engine.info.vocabSize, seed), { maxTokens: 1 })
  ) { /**/ }
  return (performance.now() - t0) / 1000;
}

/**
 * Aggregate tokens/s of `n` greedy decode steps after a 16-token prompt, `streams` sequences at once,
 * timed from when every stream has its first token (all prefills done).
 */
export async function decodeTokensPerSecond(
  engine: Engine,
  n: number,
  streams: number,
  seed: number,
): Promise<number> {
  let start = 0;
  let started = 0;
  const one = async (i: number) => {
    let count = 0;
    for await (
      const _ of engine.generate(randomPrompt(16, engine.info.vocabSize, seed + i), {
        maxTokens: n + 1,
        ignoreEos: true,
        temperature: 0,
      })
    ) {
      if (++count === 1 && ++started === streams) start = performance.now();
    }
  };
  await Promise.all(Array.from({ length: streams }, (_, i) => one(i)));
  return (n * streams) / ((performance.now() - start) / 1000);
}
