/**
 * `deno task bench:engine`: prefill and decode speed of the engine on a random-weight model of
 * SmolLM2-135M's shape (hidden 576, 30 layers, 9 heads, 3 KV heads, FFN 1536, vocab 49152) on this
 * machine, per weight dtype. Prints a table, writes bench/results/engine.json and engine.png.
 *
 *   deno task bench:engine [--dtypes bf16,f16,f32] [--threads N] [--runs 3] [--batch 8]
 *
 * No peer here (the GGUF benchmark compares with llama.cpp); the numbers are for tracking.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.ts";
import type { DType } from "../src/model/description.ts";
import { cpuIsa } from "../src/native/hearth.ts";
import { physicalCoreCount } from "../src/cli/cpu_info.ts";
import { writeBarChart } from "../src/bench/chart.ts";
import { ensureRandomModel, SMOLLM2_135M } from "./random_model.ts";
import { decodeTokensPerSecond, median, prefillSeconds } from "./engine_timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    dtypes: { type: "string", default: "bf16,f16,f32" },
    threads: { type: "string" },
    runs: { type: "string", default: "3" },
    batch: { type: "string", default: "8" },
    out: { type: "string", default: new URL("./results/", import.meta.url).pathname },
  },
});
const threads = values.threads ? Number(values.threads) : await physicalCoreCount();
const runs = Number(values.runs);
const batch = Number(values.batch);
const dtypes = values.dtypes!.split(",") as DType[];

interface Row {
  dtype: string;
  prefill128: number;
  prefill512: number;
  decode: number;
  decodeBatch: number;
}

const rows: Row[] = [];
console.error(`CPU kernels: ${await cpuIsa()}, threads: ${threads}, runs: ${runs}`);
for (const dtype of dtypes) {
  const dir = await ensureRandomModel(SMOLLM2_135M, dtype);
  const engine = await Engine.load(dir, { threads, maxModelLen: 2048, maxBatchTokens: 512 });
  try {
    await prefillSeconds(engine, 32, 99); // warm up: page in the weights, spin up the threads
    const p128: number[] = [], p512: number[] = [], dec: number[] = [], decB: number[] = [];
    for (let r = 0; r < runs; r++) {
      p128.push(128 / await prefillSeconds(engine, 128, r));
      p512.push(512 / await prefillSeconds(engine, 512, r));
      dec.push(await decodeTokensPerSecond(engine, 128, 1, r));
      decB.push(await decodeTokensPerSecond(engine, 64, batch, r));
    }
    const row = {
      dtype,
      prefill128: median(p128),
      prefill512: median(p512),
      decode: median(dec),
      decodeBatch: median(decB),
    };
    rows.push(row);
    console.error(`${dtype}: ${JSON.stringify(row)}`);
  } finally {
    await engine.close();
  }
}

const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ??
  "unknown";
const header =
  `| dtype | prefill 128 (tok/s) | prefill 512 (tok/s) | decode (tok/s) | decode ×${batch} (tok/s, aggregate) |`;
const lines = [
  `SmolLM2-135M shape, random weights; ${cpu}; ${threads} threads; ${await cpuIsa()} kernels; median of ${runs}`,
  "",
  header,
  "|---|---:|---:|---:|---:|",
  ...rows.map((r) =>
    `| ${r.dtype} | ${r.prefill128.toFixed(1)} | ${r.prefill512.toFixed(1)} | ${r.decode.toFixed(1)} | ${
      r.decodeBatch.toFixed(1)
    } |`
  ),
];
console.log(lines.join("\n"));
await Deno.mkdir(values.out!, { recursive: true });
await Deno.writeTextFile(
  `${values.out}engine.json`,
  JSON.stringify(
    { date: new Date().toISOString(), cpu, threads, isa: await cpuIsa(), runs, batch, rows },
    null,
    2,
  ),
);
await writeBarChart(`${values.out}engine.png`, {
  title: `hearth engine, SmolLM2-135M shape, ${threads} threads (${await cpuIsa()})`,
  yLabel: "tokens/s",
  groups: ["prefill 128", "prefill 512", "decode", `decode x${batch}`],
  series: rows.map((r) => ({ name: r.dtype, values: [r.prefill128, r.prefill512, r.decode, r.decodeBatch] })),
});
console.error(`wrote ${values.out}engine.json and engine.png`);
