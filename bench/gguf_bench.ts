/**
 * `deno task bench`: hearth against llama.cpp (node-llama-cpp's prebuilt CPU build, see
 * bench/llamacpp/) on the same GGUF files, with the same number of threads, measurements interleaved:
 *
 * - random-weight GGUF files of SmolLM2-135M's shape that this bench writes into the cache (F16, Q8_0,
 *   Q4_0 and a Q4_K mix), plus the real SmolLM2-135M-Instruct Q4_1 file (scripts/fetch_smollm2.sh);
 * - prefill of 128 and of 512 tokens (time to the first token from an empty context), and decode of 128
 *   tokens at batch 1 (after a 16-token prompt, timed from the first generated token);
 * - this machine's memory read bandwidth (bench/membw.c, compiled here with cc), against which each
 *   decode speed is put as a percentage of its limit: bandwidth ÷ bytes read per token. Two limits: the
 *   bandwidth the read loop sustained right before and right after each decode run (its passes' mean; the
 *   target's figure, since a shared host's bandwidth moves from minute to minute and a decode run lasts
 *   seconds), and the best single pass of the whole bench (a quiet moment's peak, an upper bound).
 *
 * Prints a markdown table, writes bench/results/gguf.json and bench/results/gguf.png.
 *
 *   deno task bench [--types F16,Q8_0,Q4_0,Q4_K,Q4_1 (or Q2_K, Q3_K)] [--threads N] [--runs 3] [--no-peer] [--mmap | --no-mmap]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.ts";
import { describeModelPath } from "../src/model/describe.ts";
import { GGUF_VALUE_TYPE_NAMES, type GgufHeader, GgufValueType, readGgufHeader } from "../src/model/gguf.ts";
import {
  type GgufScalarTypeName,
  type GgufTensorToWrite,
  type GgufTypedValue,
  gv,
  randomTensorData,
  writeGguf,
} from "../src/model/gguf_write.ts";
import { cpuIsa, KV_CACHE_ELEMENT_BYTES } from "../src/native/hearth.ts";
import { physicalCoreCount } from "../src/cli/cpu_info.ts";
import { writeBarChart } from "../src/bench/chart.ts";
import { cacheDir } from "./random_model.ts";
import { LlamaCppPeer } from "./llamacpp/peer.ts";
import { smollm2Path } from "../test/real/smollm2_model.ts";
import { median } from "./engine_timing.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    types: { type: "string", default: "F16,Q8_0,Q4_0,Q4_K,Q4_1" },
    threads: { type: "string" },
    runs: { type: "string", default: "3" },
    "no-peer": { type: "boolean", default: false },
    // hearth's weights read from the mapped files (serve --mmap), or copied into huge-page memory
    // (--no-mmap); by default as serve does: copied when they take at most half the available memory.
    mmap: { type: "boolean", default: false },
    "no-mmap": { type: "boolean", default: false },
    out: { type: "string", default: new URL("./results/", import.meta.url).pathname },
  },
});
const threads = values.threads ? Number(values.threads) : physicalCoreCount();
const runs = Number(values.runs);
const types = values.types!.split(",").map((t) => t.trim().toUpperCase());

const PROMPT_DECODE = 16;
const DECODE = 128;
const PHASES = ["prefill 128", "prefill 512", "decode 128"] as const;
type Phase = typeof PHASES[number];

// ---------------------------------------------------------------------------------------------------------
// The files
// ---------------------------------------------------------------------------------------------------------

/** How each benchmark file stores its tensors, by the type it is named after. */
interface FileSpec {
  /** Name in the table. */
  label: string;
  /** ggml type of a 2-D weight in a block, given its row length (ne0). */
  weight: (rowLength: number) => string;
  /** ggml type of token_embd (tied: it is also the output matrix). */
  embd: string;
  /** general.file_type (llama_ftype) written into the file. */
  fileType: number;
  note?: string;
}

const RANDOM_FILES: Record<string, FileSpec> = {
  F16: { label: "F16", weight: () => "F16", embd: "F16", fileType: 1 },
  // llama.cpp's quantizer keeps the tied output matrix (token_embd) at Q8_0 when rows of 576 are no
  // multiple of 256 (its Q6_K choice falls back): so do these files, as the real Q4_1 file does.
  Q8_0: { label: "Q8_0", weight: () => "Q8_0", embd: "Q8_0", fileType: 7 },
  Q4_0: { label: "Q4_0", weight: () => "Q4_0", embd: "Q8_0", fileType: 2 },
  Q4_K: {
    label: "Q4_K mix",
    weight: (row) => row % 256 === 0 ? "Q4_K" : "Q5_0",
    embd: "Q8_0",
    fileType: 14,
    note: "Q4_K mix: Q4_K needs rows of whole 256-blocks, so only ffn_down (rows of 1536) is Q4_K; the " +
      "other matrices (rows of 576) are Q5_0, llama.cpp's quantizer's own fallback for Q4_K, and the " +
      "tied embedding/output matrix is Q8_0",
  },
  // Not in the default set (the issue's table): the 2- and 3-bit K-quants, `--types Q2_K,Q3_K`.
  Q2_K: {
    label: "Q2_K mix",
    weight: (row) => row % 256 === 0 ? "Q2_K" : "Q4_0",
    embd: "Q8_0",
    fileType: 10,
    note: "Q2_K / Q3_K mix: only ffn_down (rows of 1536) can be a K-quant; the other matrices (rows of " +
      "576) are Q4_0, in place of the IQ4_NL llama.cpp's quantizer falls back to, and the tied " +
      "embedding/output matrix is Q8_0",
  },
  Q3_K: { label: "Q3_K mix", weight: (row) => row % 256 === 0 ? "Q3_K" : "Q4_0", embd: "Q8_0", fileType: 11 },
};

/** The real file's metadata value as a typed value for the writer. */
function typedValue(header: GgufHeader, key: string): GgufTypedValue {
  const kind = header.metadataTypes.get(key)!;
  const value = header.metadata.get(key)!;
  if (kind.type === GgufValueType.ARRAY) {
    const el = GGUF_VALUE_TYPE_NAMES[kind.elementType!] as GgufScalarTypeName;
    return gv.array(el, value as ArrayLike<number | bigint | boolean | string>);
  }
  const name = GGUF_VALUE_TYPE_NAMES[kind.type] as GgufScalarTypeName;
  return { type: name, value: value as number | bigint | boolean | string };
}

/**
 * Writes (once) a random-weight GGUF file with the real SmolLM2-135M file's metadata, tokenizer and
 * tensor table, its tensors stored as `spec` says; returns its path.
 */
async function ensureRandomGguf(type: string, spec: FileSpec, real: GgufHeader): Promise<string> {
  const dir = `${cacheDir()}/bench/gguf`;
  const path = `${dir}/smollm2-135m-random-${type.toLowerCase()}.gguf`;
  const marker = `${path}.complete`;
  try {
    await Deno.stat(marker);
    return path;
  } catch { /* write it */ }
  await Deno.mkdir(dir, { recursive: true });
  const metadata: [string, GgufTypedValue][] = [];
  for (const key of real.metadata.keys()) {
    if (key === "general.file_type") metadata.push([key, gv.u32(spec.fileType)]);
    else if (key === "general.name") metadata.push([key, gv.str(`SmolLM2-135M shape, random ${spec.label}`)]);
    else metadata.push([key, typedValue(real, key)]);
  }
  let seed = 1;
  const tensors: GgufTensorToWrite[] = real.tensors.map((t) => {
    const type = t.dims.length === 1
      ? "F32"
      : t.name === "token_embd.weight"
      ? spec.embd
      : spec.weight(t.dims[0]);
    // Norm weights are ones; everything else uniform, about ±0.1 (finite logits, realistic activations).
    const data = t.dims.length === 1
      ? new Float32Array(t.dims[0]).fill(1)
      : randomTensorData(type, t.dims, { seed: seed++, amplitude: 0.1 });
    return { name: t.name, dims: t.dims, type, data };
  });
  console.error(`writing ${path} ...`);
  await writeGguf(path, { metadata, tensors });
  await Deno.writeTextFile(marker, new Date().toISOString());
  return path;
}

/** What a decoded token reads from memory, from the file's tensor table. */
interface TokenBytes {
  /** Every weight a token's forward pass reads whole. */
  weights: number;
  /** KV cache bytes a token reads per element byte (× 4 for f32, × 2 for f16), averaged over the decode. */
  kvPerElementByte: number;
  /** Types of the 2-D weights, by parameter count. */
  composition: string;
}

function tokenBytes(h: GgufHeader): TokenBytes {
  const embd = h.tensorsByName.get("token_embd.weight")!;
  const tied = !h.tensorsByName.has("output.weight");
  let weights = 0;
  const byType = new Map<string, number>();
  for (const t of h.tensors) {
    if (t.dims.length > 1) byType.set(t.typeName, (byType.get(t.typeName) ?? 0) + t.nElements);
    if (t === embd) continue;
    weights += t.nbytes;
  }
  // The embedding lookup reads one row; with tied embeddings the same table is the output matrix, read
  // whole every token.
  weights += embd.nbytes / embd.dims[1] + (tied ? embd.nbytes : 0);
  const arch = h.metadata.get("general.architecture") as string;
  const n = (k: string) => Number(h.metadata.get(`${arch}.${k}`));
  const headDim = n("embedding_length") / n("attention.head_count");
  const perPosition = 2 * n("block_count") * n("attention.head_count_kv") * headDim;
  // Decoding token i (1..DECODE) attends to PROMPT_DECODE + i positions.
  const meanContext = PROMPT_DECODE + (DECODE + 1) / 2;
  const total = [...byType.values()].reduce((a, b) => a + b, 0);
  const composition = [...byType].sort((a, b) => b[1] - a[1])
    .map(([t, c]) => `${t} ${(100 * c / total).toFixed(0)}%`).join(", ");
  return { weights, kvPerElementByte: perPosition * meanContext, composition };
}

// ---------------------------------------------------------------------------------------------------------
// Memory bandwidth
// ---------------------------------------------------------------------------------------------------------

/** Read GB/s of bench/membw.c's passes: the best one, and the mean (all bytes over all their time). */
interface Bandwidth {
  best: number;
  mean: number;
}

/** Compiles bench/membw.c into the cache (once per source version) and runs `reps` passes over `mib`. */
async function memoryBandwidth(threads: number, mib = 1024, reps = 10): Promise<Bandwidth> {
  const src = await Deno.readFile(`${ROOT}bench/membw.c`);
  const hash = [...new Uint8Array(await crypto.subtle.digest("SHA-256", src)).slice(0, 6)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const bin = `${cacheDir()}/bench/membw-${hash}`;
  try {
    await Deno.stat(bin);
  } catch {
    await Deno.mkdir(`${cacheDir()}/bench`, { recursive: true });
    const cc = await new Deno.Command("cc", {
      args: ["-O3", "-march=native", "-pthread", `${ROOT}bench/membw.c`, "-o", bin],
    }).output();
    if (!cc.success) throw new Error(`cc bench/membw.c failed:\n${new TextDecoder().decode(cc.stderr)}`);
  }
  const out = await new Deno.Command(bin, { args: [String(threads), String(mib), String(reps)] }).output();
  if (!out.success) throw new Error(`${bin} failed:\n${new TextDecoder().decode(out.stderr)}`);
  const json = JSON.parse(new TextDecoder().decode(out.stdout));
  return { best: json.gbps, mean: json.mean_gbps };
}

/** GB/s the memory sustained around one decode run: 8 passes over 512 MiB (16× the L3 of the hosts here)
    before it and 8 after, the mean of the two means. */
async function bandwidthAround<T>(
  threads: number,
  run: () => Promise<T>,
): Promise<{ result: T; gbps: number }> {
  const before = await memoryBandwidth(threads, 512, 8);
  const result = await run();
  const after = await memoryBandwidth(threads, 512, 8);
  return { result, gbps: (before.mean + after.mean) / 2 };
}

// ---------------------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------------------

function randomPrompt(n: number, vocab: number, seed: number): number[] {
  let s = seed;
  // Ids from 0x100 on: past the special tokens and the raw bytes, ordinary words.
  return Array.from({ length: n }, () => 256 + (s = (s * 1103515245 + 12345) % 2147483648) % (vocab - 256));
}

/** hearth: seconds to the first token of `prompt` (prefill and one greedy sample). */
async function hearthFirstToken(engine: Engine, prompt: number[]): Promise<number> {
  const t0 = performance.now();
  for await (const _ of engine.generate(prompt, { maxTokens: 1, temperature: 0, ignoreEos: true })) { /**/ }
  return (performance.now() - t0) / 1000;
}

/** hearth: seconds for `n` greedy tokens after the first one, and all generated ids. */
async function hearthDecode(
  engine: Engine,
  prompt: number[],
  n: number,
): Promise<{ seconds: number; ids: number[] }> {
  const ids: number[] = [];
  let t0 = 0;
  for await (const t of engine.generate(prompt, { maxTokens: n + 1, temperature: 0, ignoreEos: true })) {
    ids.push(t.id);
    if (ids.length === 1) t0 = performance.now();
  }
  return { seconds: (performance.now() - t0) / 1000, ids };
}

interface Row {
  type: string;
  label: string;
  file: string;
  phase: Phase;
  hearth: number;
  llamacpp: number | null;
  ratio: number | null;
  hearthSamples: number[];
  llamacppSamples: number[];
  /** Decode only: GB/s the memory sustained around each sample (bandwidthAround), per engine. */
  bandwidthAroundHearth?: number[];
  bandwidthAroundLlamacpp?: number[];
  /** Decode only: each engine's median share of the limit its samples' sustained bandwidth sets (the
      target's figure). */
  pctHearth?: number;
  pctLlamacpp?: number | null;
  /** Decode only: tokens/s the bench's best bandwidth pass allows, and each engine's share of it. */
  limitHearth?: number;
  limitLlamacpp?: number;
  pctBestHearth?: number;
  pctBestLlamacpp?: number | null;
  /** Decode only: how many of the 129 greedy tokens both engines chose alike (from the start). */
  samePrefix?: number;
}

const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ??
  "unknown";
const isa = await cpuIsa();
console.error(`hearth CPU kernels: ${isa}; threads: ${threads}; runs: ${runs}`);

const realPath = await smollm2Path();
const realHeader = await readGgufHeader(realPath);

let peer: LlamaCppPeer | null = null;
let peerMissing: string | null = null;
let peerInfo: Awaited<ReturnType<LlamaCppPeer["info"]>> | null = null;
if (values["no-peer"]) {
  peerMissing = "--no-peer";
} else {
  try {
    peer = await LlamaCppPeer.start();
    peerInfo = await peer.info();
    console.error(
      `llama.cpp: node-llama-cpp ${peerInfo.buildType}, gpu ${peerInfo.gpu}; ${peerInfo.systemInfo}`,
    );
  } catch (e) {
    peerMissing = (e as Error).message;
    console.error(`llama.cpp peer missing: ${peerMissing}`);
  }
}

const bandwidths = [(await memoryBandwidth(threads)).best];
console.error(`memory read bandwidth: ${bandwidths[0].toFixed(2)} GB/s`);

const rows: Row[] = [];
const notes: string[] = [];
/** Where hearth read the weights it uses as stored (the first engine's placement, e.g. "copied into memory"). */
let weightsNote: string | undefined;
const fileInfo: Record<string, { path: string; bytes: number; composition: string; bytesPerToken: number }> =
  {};
const tokenBytesOf = new Map<string, TokenBytes>();
/** Bytes per KV cache element of hearth's engine for each file. */
const kvElementBytesOf = new Map<string, number>();
let peerContext: unknown = null;

for (const type of types) {
  let path: string, label: string;
  if (type === "Q4_1") {
    path = realPath;
    label = "Q4_1 (real)";
  } else {
    const spec = RANDOM_FILES[type];
    if (spec === undefined) {
      throw new Error(`unknown type ${type}: one of F16, Q8_0, Q4_0, Q4_K, Q4_1, Q2_K, Q3_K`);
    }
    path = await ensureRandomGguf(type, spec, realHeader);
    label = spec.label;
    if (spec.note) notes.push(spec.note);
  }
  const header = await readGgufHeader(path);
  const tb = tokenBytes(header);
  tokenBytesOf.set(type, tb);
  fileInfo[type] = { path, bytes: header.fileSize, composition: tb.composition, bytesPerToken: tb.weights };

  const { description, generation } = await describeModelPath(path, { tokenizer: false });
  const engine = await Engine.fromDescription(description, generation, path, {
    threads,
    maxModelLen: 2048,
    maxBatchTokens: 512,
    kvCacheTokens: 4096,
    prefixCaching: false,
    weightsInMemory: values["no-mmap"] ? true : values.mmap ? false : "auto",
  });
  weightsNote ??= engine.info.weights;
  const vocab = engine.info.vocabSize;
  try {
    if (peer) peerContext = await peer.load(path, { threads, contextSize: 2048, batchSize: 512 });
    kvElementBytesOf.set(type, KV_CACHE_ELEMENT_BYTES[engine.info.kvCacheDtype ?? "float32"]);
    console.error(
      `${label}: hearth weights ${engine.info.dtype}, KV cache ${engine.info.kvCacheDtype}; ${tb.composition}`,
    );
    // Warm up both: page in the weights, start the threads.
    await hearthFirstToken(engine, randomPrompt(64, vocab, 7));
    await hearthDecode(engine, randomPrompt(PROMPT_DECODE, vocab, 7), 8);
    if (peer) {
      await peer.firstToken(randomPrompt(64, vocab, 7));
      await peer.decode(randomPrompt(PROMPT_DECODE, vocab, 7), 8);
    }

    const samples: Record<Phase, { h: number[]; l: number[] }> = {
      "prefill 128": { h: [], l: [] },
      "prefill 512": { h: [], l: [] },
      "decode 128": { h: [], l: [] },
    };
    const around: { h: number[]; l: number[] } = { h: [], l: [] };
    let idsH: number[] = [], idsL: number[] = [];
    for (let r = 0; r < runs; r++) {
      for (const phase of PHASES) {
        // Interleaved, and on every other run llama.cpp goes first, so drift hits both alike.
        const order = r % 2 === 0 ? ["h", "l"] as const : ["l", "h"] as const;
        for (const who of order) {
          if (who === "l" && !peer) continue;
          if (phase === "decode 128") {
            const prompt = randomPrompt(PROMPT_DECODE, vocab, 1000 + r);
            const { result: res, gbps } = await bandwidthAround(
              threads,
              () => who === "h" ? hearthDecode(engine, prompt, DECODE) : peer!.decode(prompt, DECODE),
            );
            samples[phase][who].push(DECODE / res.seconds);
            around[who].push(gbps);
            if (r === 0 && who === "h") idsH = res.ids;
            if (r === 0 && who === "l") idsL = res.ids;
          } else {
            const n = phase === "prefill 128" ? 128 : 512;
            const prompt = randomPrompt(n, vocab, 2000 + 17 * r + n);
            const s = who === "h"
              ? await hearthFirstToken(engine, prompt)
              : (await peer!.firstToken(prompt)).seconds;
            samples[phase][who].push(n / s);
          }
        }
      }
    }
    let samePrefix = 0;
    while (samePrefix < Math.min(idsH.length, idsL.length) && idsH[samePrefix] === idsL[samePrefix]) {
      samePrefix++;
    }

    for (const phase of PHASES) {
      const h = median(samples[phase].h);
      const l = peer ? median(samples[phase].l) : null;
      const row: Row = {
        type,
        label,
        file: path,
        phase,
        hearth: h,
        llamacpp: l,
        ratio: l ? h / l : null,
        hearthSamples: samples[phase].h,
        llamacppSamples: samples[phase].l,
      };
      if (phase === "decode 128") {
        row.samePrefix = peer ? samePrefix : undefined;
        row.bandwidthAroundHearth = around.h;
        row.bandwidthAroundLlamacpp = around.l;
      }
      rows.push(row);
      console.error(
        `${label} ${phase}: hearth ${h.toFixed(1)} tok/s, llama.cpp ${l?.toFixed(1) ?? "missing"} tok/s` +
          (l ? ` (${(h / l).toFixed(2)}x)` : ""),
      );
    }
  } finally {
    await engine.close();
    if (peer) await peer.request("unload");
  }
}
if (peer) await peer.close();

bandwidths.push((await memoryBandwidth(threads)).best);
const bandwidth = Math.max(...bandwidths);
console.error(
  `memory read bandwidth after: ${bandwidths[1].toFixed(2)} GB/s; using the best, ${bandwidth.toFixed(2)}`,
);
/** Median over the samples of each one's tokens/s as a percentage of what its sustained bandwidth allows. */
function pctAround(tokPerS: number[], gbps: number[], bytesPerToken: number): number {
  return median(tokPerS.map((t, i) => 100 * t / (gbps[i] * 1e9 / bytesPerToken)));
}
// KV caches: hearth's as the engine chose (f16 for quantized weights, f32 for float ones), llama.cpp's f16
// (its default, 2 bytes an element).
for (const row of rows) {
  if (row.phase !== "decode 128") continue;
  const tb = tokenBytesOf.get(row.type)!;
  const bytesHearth = tb.weights + kvElementBytesOf.get(row.type)! * tb.kvPerElementByte;
  const bytesLlamacpp = tb.weights + 2 * tb.kvPerElementByte;
  row.limitHearth = bandwidth * 1e9 / bytesHearth;
  row.limitLlamacpp = bandwidth * 1e9 / bytesLlamacpp;
  row.pctBestHearth = 100 * row.hearth / row.limitHearth;
  row.pctBestLlamacpp = row.llamacpp === null ? null : 100 * row.llamacpp / row.limitLlamacpp;
  row.pctHearth = pctAround(row.hearthSamples, row.bandwidthAroundHearth!, bytesHearth);
  row.pctLlamacpp = row.llamacpp === null
    ? null
    : pctAround(row.llamacppSamples, row.bandwidthAroundLlamacpp!, bytesLlamacpp);
}

// ---------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------

/** The lowest and highest bandwidth sustained around the decode runs, "a-b". */
function bandwidthRange(): string {
  const all = rows.flatMap((r) => [...(r.bandwidthAroundHearth ?? []), ...(r.bandwidthAroundLlamacpp ?? [])]);
  return all.length ? `${Math.min(...all).toFixed(1)}-${Math.max(...all).toFixed(1)}` : "missing";
}

const f1 = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x) ? "missing" : x.toFixed(1);
const f0 = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x) ? "missing" : x.toFixed(0);
const mb = (b: number) => (b / 1e6).toFixed(1);

function targetMet(row: Row): string {
  if (row.ratio === null) return "–";
  const want = row.phase === "decode 128" ? 1.1 : 1.0;
  return row.ratio >= want
    ? `yes (≥ ${want.toFixed(2)}×)`
    : `no (${row.ratio.toFixed(3)} < ${want.toFixed(2)})`;
}

const lines: string[] = [];
lines.push(
  `hearth vs llama.cpp (${
    peerInfo
      ? `node-llama-cpp ${peerInfo.version}, its prebuilt llama.cpp CPU build (${peerInfo.llamaCpp.release})`
      : "peer missing"
  }), SmolLM2-135M shape; ${cpu}; ${threads} threads each; hearth kernels ${isa}${
    weightsNote ? `, weights used as stored ${weightsNote.replace(/ \(.*$/, "").replace(/:.*$/, "")}` : ""
  }; median of ${runs} ` +
    `interleaved runs; memory read bandwidth (bench/membw.c, ${threads} threads) sustained around the ` +
    `decode runs ${bandwidthRange()} GB/s, best pass ${bandwidth.toFixed(2)} GB/s (best of ${
      bandwidths.map((b) => b.toFixed(2)).join(" / ")
    } before and after)`,
);
if (peerMissing) lines.push("", `llama.cpp columns missing: ${peerMissing}`);
lines.push(
  "",
  "| file | phase | hearth tok/s | llama.cpp tok/s | hearth ÷ llama.cpp | target met | hearth % of BW limit | llama.cpp % of BW limit | hearth % of best-pass limit | llama.cpp % of best-pass limit |",
  "|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
);
for (const r of rows) {
  const dec = r.phase === "decode 128";
  lines.push(
    `| ${r.label} | ${r.phase} | ${f1(r.hearth)} | ${f1(r.llamacpp)} | ${
      r.ratio === null ? "missing" : r.ratio.toFixed(2) + "×"
    } | ${targetMet(r)} | ${dec ? f0(r.pctHearth) + " %" : ""} | ${
      dec ? (r.pctLlamacpp == null ? "missing" : f0(r.pctLlamacpp) + " %") : ""
    } | ${dec ? f0(r.pctBestHearth) + " %" : ""} | ${
      dec ? (r.pctBestLlamacpp == null ? "missing" : f0(r.pctBestLlamacpp) + " %") : ""
    } |`,
  );
}
lines.push(
  "",
  "| file | 2-D weights | file MB | weight MB read per token | hearth KV cache | BW limit tok/s (hearth) | BW limit tok/s (llama.cpp, f16 KV) | greedy tokens alike |",
  "|---|---|---:|---:|---|---:|---:|---:|",
);
for (const type of types) {
  const d = rows.find((r) => r.type === type && r.phase === "decode 128")!;
  const fi = fileInfo[type];
  lines.push(
    `| ${d.label} | ${fi.composition} | ${mb(fi.bytes)} | ${mb(fi.bytesPerToken)} | ${
      kvElementBytesOf.get(type) === 2 ? "f16" : "f32"
    } | ${f0(d.limitHearth)} | ${f0(d.limitLlamacpp)} | ${
      d.samePrefix === undefined ? "–" : `${d.samePrefix}/${DECODE + 1}`
    } |`,
  );
}

// Targets that span types.
const dec = rows.filter((r) => r.phase === "decode 128");
const f16 = dec.find((r) => r.type === "F16");
const verdicts: string[] = [];
for (const r of dec.filter((r) => r.type === "F16" || r.type === "Q8_0")) {
  verdicts.push(
    `${r.label} decode at ${f0(r.pctHearth)} % of the bandwidth limit (target ≥ 90 %; ${
      f0(r.pctBestHearth)
    } % of the best pass's)`,
  );
}
if (f16) {
  const slower = dec.filter((r) => r.type !== "F16" && r.hearth <= f16.hearth).map((r) => r.label);
  verdicts.push(
    slower.length === 0
      ? "every quantized type decodes faster than F16 in hearth"
      : `not faster than F16 in hearth: ${slower.join(", ")}`,
  );
}
notes.push(
  "bytes read per token = every weight except the embedding table + one embedding row + the tied " +
    "embedding table once more as the output matrix (SmolLM2 ties them, so the table is read whole " +
    `every token) + the KV cache at the mean context of the decode (${PROMPT_DECODE}-token prompt, ` +
    `${DECODE} tokens): in hearth f16 for quantized weights and f32 for F16 (the engine's default), f16 in ` +
    `llama.cpp`,
  "% of BW limit = the median over the decode runs of each run's tokens/s ÷ (the bandwidth bench/membw.c " +
    "sustained in 8 passes over 512 MiB right before it and 8 right after ÷ bytes read per token); " +
    "% of best-pass limit = the median tokens/s ÷ (the best single pass over 1 GiB before or after the " +
    "whole bench ÷ bytes read per token): on a shared host the first compares like with like, the second " +
    "sets a quiet moment's peak against minutes of decoding",
  "prefill = time to the first token from an empty context (prompt of random ordinary-word ids), " +
    "decode = 128 greedy tokens after it at batch 1, EOS ignored, timed from the first generated token",
  "greedy tokens alike: how many of the 129 greedy tokens of the first decode run both engines " +
    "chose the same, from the start; random weights give near-flat logits, so their greedy paths part " +
    "on the first near-tie (or both fall into one repeated token) — only the real file's count means much",
  "the machine is a shared 2-core VM (others' tests and benchmarks may run at the same time): numbers " +
    "are noisy; the per-run samples are in gguf.json",
);
lines.push("", ...verdicts.map((v) => `- ${v}`), ...[...new Set(notes)].map((n) => `- ${n}`));
if (peerContext) lines.push(`- llama.cpp context: ${JSON.stringify(peerContext)}`);
console.log(lines.join("\n"));

await Deno.mkdir(values.out!, { recursive: true });
await Deno.writeTextFile(
  `${values.out}gguf.json`,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      cpu,
      threads,
      hearthKernels: isa,
      runs,
      llamacpp: peerInfo ? { ...peerInfo, package: "node-llama-cpp", context: peerContext } : null,
      llamacppMissing: peerMissing,
      bandwidthGBps: bandwidth,
      bandwidthSamplesGBps: bandwidths,
      files: fileInfo,
      rows,
      targets: verdicts,
      notes: [...new Set(notes)],
    },
    null,
    2,
  ) + "\n",
);
const labels = types.map((t) => rows.find((r) => r.type === t)!.label);
const groupRows = (phase: Phase) => types.map((t) => rows.find((r) => r.type === t && r.phase === phase)!);
if (peer) {
  await writeBarChart(`${values.out}gguf.png`, {
    title: `hearth / llama.cpp speed, SmolLM2-135M GGUF, ${threads} threads (above 1 = hearth faster)`,
    yLabel: "hearth / llama.cpp",
    groups: labels,
    series: PHASES.map((p) => ({ name: p, values: groupRows(p).map((r) => r.ratio) })),
    annotations: PHASES.map((p) =>
      groupRows(p).map((r) => r.ratio === null ? null : `${r.ratio.toFixed(2)}x`)
    ),
    width: 1000,
  });
} else {
  await writeBarChart(`${values.out}gguf.png`, {
    title: `hearth decode, SmolLM2-135M GGUF, ${threads} threads (llama.cpp missing)`,
    yLabel: "% of memory-bandwidth limit",
    groups: labels,
    series: [{ name: "hearth decode", values: groupRows("decode 128").map((r) => r.pctHearth ?? null) }],
    width: 1000,
  });
}
console.error(`wrote ${values.out}gguf.json and gguf.png`);
