/**
 * `deno task bench:cuda`: the CUDA backend on a random-weight model of Llama-3.2-1B's shape (hidden
 * 2048, 16 layers, 32 heads, 8 KV heads, FFN 8192, vocab 128256, tied embeddings) in bf16, Q8_0 and
 * Q4_0 (quantized at load from the bf16 checkpoint), and transformers' `generate` on the same checkpoint
 * in bf16 on the same GPU, in the same run:
 *
 *  - batch-1 decode tokens/s, and the weight bytes it streams per second as a share of the GPU's copy
 *    bandwidth, which the bench measures first with the library's own copy kernel (read + write);
 *  - prefill tokens/s of a 2048-token prompt (time to the first token);
 *  - aggregate decode tokens/s of 8, 32 and 64 sequences at once.
 *
 * Prints a table; writes cuda.json and cuda.png to --out (default bench/results/).
 *
 *   deno task bench:cuda [--dtypes bf16,q8_0,q4_0] [--runs 3] [--no-hf] [--out DIR]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.ts";
import { cudaDevices } from "../src/native/hearth.ts";
import { cudaCopyBandwidth } from "../src/native/cuda_testing.ts";
import { writeBarChart } from "../src/bench/chart.ts";
import { ensureRandomModel, LLAMA32_1B } from "./random_model.ts";
import { decodeTokensPerSecond, median, prefillSeconds } from "./engine_timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    dtypes: { type: "string", default: "bf16,q8_0,q4_0" },
    runs: { type: "string", default: "3" },
    "no-hf": { type: "boolean", default: false },
    out: { type: "string", default: new URL("./results/", import.meta.url).pathname },
  },
});
const runs = Number(values.runs);
const dtypes = values.dtypes!.split(",") as ("bf16" | "q8_0" | "q4_0")[];
const out = values.out!.endsWith("/") ? values.out! : `${values.out}/`;
const STREAMS = [8, 32, 64];

const gpus = await cudaDevices();
if (gpus.length === 0) {
  console.error("bench:cuda: no CUDA device (or lib/libhearth_cuda.so is not built): nothing to measure");
  Deno.exit(1);
}
const gpu = gpus[0];
console.error(
  `GPU: ${gpu.name}, ${(gpu.totalBytes / 2 ** 30).toFixed(0)} GiB, sm_${gpu.capability.join("")}`,
);
const copyGBs = cudaCopyBandwidth(2 ** 31, 20);
console.error(`copy bandwidth (read + write, own kernel): ${copyGBs.toFixed(0)} GB/s`);

interface Row {
  engine: string;
  dtype: string;
  weightBytes: number | null;
  decode: number;
  bandwidthPct: number | null;
  prefill2048: number | null;
  aggregate: Record<string, number | null>;
}

const rows: Row[] = [];
const dir = await ensureRandomModel(LLAMA32_1B, "bf16");
for (const dtype of dtypes) {
  const engine = await Engine.load(dir, {
    device: "cuda:0",
    dtype: "bf16",
    quantize: dtype === "bf16" ? undefined : dtype,
    maxModelLen: 4096,
    maxBatchTokens: 2048,
    maxBatchSeqs: 64,
    prefixCaching: false,
  });
  try {
    const weightBytes = engine.memory().ownedWeights;
    await prefillSeconds(engine, 64, 99); // warm up: module load, graphs for the shapes below
    await decodeTokensPerSecond(engine, 8, 1, 5);
    const dec: number[] = [], pre: number[] = [];
    const agg: Record<string, number[]> = Object.fromEntries(STREAMS.map((s) => [s, []]));
    for (let r = 0; r < runs; r++) {
      dec.push(await decodeTokensPerSecond(engine, 128, 1, r));
      pre.push(2048 / await prefillSeconds(engine, 2048, 100 + r));
      for (const s of STREAMS) agg[s].push(await decodeTokensPerSecond(engine, 64, s, 1000 * r + s));
    }
    const d = median(dec);
    const row: Row = {
      engine: "hearth",
      dtype,
      weightBytes,
      decode: d,
      bandwidthPct: (100 * weightBytes * d) / (copyGBs * 1e9),
      prefill2048: median(pre),
      aggregate: Object.fromEntries(STREAMS.map((s) => [s, median(agg[s])])),
    };
    rows.push(row);
    console.error(`${dtype}: ${JSON.stringify(row)}`);
  } finally {
    await engine.close();
  }
}

if (!values["no-hf"]) {
  const py = await new Deno.Command("python3", {
    args: [new URL("./hf_generate.py", import.meta.url).pathname, dir, JSON.stringify(STREAMS)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (py.success) {
    const hf = JSON.parse(new TextDecoder().decode(py.stdout)) as {
      decode: number;
      prefill2048: number;
      aggregate: Record<string, number>;
    };
    rows.push({ engine: "transformers", dtype: "bf16", weightBytes: null, bandwidthPct: null, ...hf });
  } else console.error("bench:cuda: transformers' generate failed; its row is left out");
}

const f = (x: number | null | undefined, d = 1) => (x === null || x === undefined ? "n/a" : x.toFixed(d));
const hfDecode = rows.find((r) => r.engine === "transformers")?.decode;
const lines = [
  `Llama-3.2-1B shape, random weights; ${gpu.name}; copy bandwidth ${
    copyGBs.toFixed(0)
  } GB/s; median of ${runs}`,
  "",
  "| engine | dtype | decode b=1 (tok/s) | % of copy bandwidth | vs transformers b=1 | prefill 2048 (tok/s) | " +
  STREAMS.map((s) => `decode ×${s} (tok/s)`).join(" | ") + " |",
  "|---|---|---:|---:|---:|---:|" + STREAMS.map(() => "---:").join("|") + "|",
  ...rows.map((r) =>
    `| ${r.engine} | ${r.dtype} | ${f(r.decode)} | ${f(r.bandwidthPct)} | ${
      hfDecode ? `${(r.decode / hfDecode).toFixed(2)}×` : "n/a"
    } | ${f(r.prefill2048, 0)} | ` + STREAMS.map((s) => f(r.aggregate[s], 0)).join(" | ") + " |"
  ),
];
console.log(lines.join("\n"));
await Deno.mkdir(out, { recursive: true });
await Deno.writeTextFile(
  `${out}cuda.json`,
  JSON.stringify({ date: new Date().toISOString(), gpu, copyGBs, runs, rows }, null, 2),
);
await writeBarChart(`${out}cuda.png`, {
  title: `hearth on ${gpu.name}, Llama-3.2-1B shape`,
  yLabel: "tokens/s",
  groups: ["decode b=1", "prefill 2048 /10", ...STREAMS.map((s) => `decode x${s}`)],
  series: rows.map((r) => ({
    name: `${r.engine} ${r.dtype}`,
    values: [
      r.decode,
      r.prefill2048 === null ? null : r.prefill2048 / 10,
      ...STREAMS.map((s) => r.aggregate[s]),
    ],
  })),
});
console.error(`wrote ${out}cuda.json and cuda.png`);
