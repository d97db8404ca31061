// The llama.cpp peer: node-llama-cpp (prebuilt llama.cpp, CPU backend only) driven over JSON lines.
//
//   node bench/llamacpp/peer.mjs <node-llama-cpp install dir>      (scripts/fetch_llamacpp.sh prints it)
//
// Reads one JSON request a line on stdin, {"id": n, "op": "...", ...}, and answers each with one line
// on stdout, {"id": n, "ok": true, ...} or {"id": n, "ok": false, "error": "..."}, in order. llama.cpp's
// own log goes to stderr. Timings are taken here, around the llama.cpp calls, so the pipe costs nothing.
//
// Ops:
//   info                                  → {version, llamaCpp, systemInfo, cpuMathCores, gpu, buildType}
//   load {path, threads, contextSize, batchSize}
//                                         → {contextSize, batchSize, flashAttention, threads}
//   tokenize {texts, special}             → {ids: number[][], bos, prependBos}
//   firstToken {tokens}                   → {seconds, token}: prefill of `tokens` and one greedy token
//   decode {tokens, n}                    → {seconds, ids}: `n` greedy tokens after the first (EOS ignored)
//   top {tokens, k, include?}             → {top: [id, logit][][]}: for every position of `tokens` (one
//                                           sequence, teacher-forced), the `k` largest next-token logits
//                                           and those of the ids in include[position], largest first
//   unload, exit
//
// Node (not Deno) runs this: node-llama-cpp is a Node-API addon that loads its prebuilt llama.cpp
// shared libraries from its own package directory; a separate process also keeps llama.cpp's
// threads and memory apart from hearth's in the benchmark.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: node peer.mjs <node-llama-cpp install dir>\n");
  process.exit(2);
}
const nlc = await import(pathToFileURL(join(dir, "node_modules/node-llama-cpp/dist/index.js")).href);
const { getLlama, LlamaLogLevel } = nlc;
const { version } = JSON.parse(readFileSync(join(dir, "node_modules/node-llama-cpp/package.json"), "utf8"));

// gpu: false → the CPU build; build: "never" and skipDownload → only the installed prebuilt binary.
// maxThreads: 0 → the thread count a context asks for is used as is.
const llama = await getLlama({
  gpu: false,
  build: "never",
  usePrebuiltBinaries: true,
  skipDownload: true,
  maxThreads: 0,
  logLevel: LlamaLogLevel.warn,
  progressLogs: false,
});

let model = null, context = null, sequence = null;

async function unload() {
  await context?.dispose();
  await model?.dispose();
  model = context = sequence = null;
}

function needSequence() {
  if (sequence === null) throw new Error("no model loaded");
  return sequence;
}

const ops = {
  info() {
    return {
      version,
      llamaCpp: llama.llamaCppRelease,
      systemInfo: llama.systemInfo,
      cpuMathCores: llama.cpuMathCores,
      gpu: llama.gpu,
      buildType: llama.buildType,
    };
  },

  async load({ path, threads, contextSize = 2048, batchSize = 512 }) {
    await unload();
    model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    context = await model.createContext({
      contextSize,
      batchSize,
      threads: { ideal: threads, min: threads },
    });
    sequence = context.getSequence();
    return {
      contextSize: context.contextSize,
      batchSize: context.batchSize,
      flashAttention: context.flashAttention,
      threads: context.idealThreads,
    };
  },

  tokenize({ texts, special = true }) {
    if (model === null) throw new Error("no model loaded");
    return {
      ids: texts.map((t) => model.tokenize(t, special)),
      bos: model.tokens.bos,
      prependBos: model.tokens.shouldPrependBosToken ?? null,
    };
  },

  async firstToken({ tokens }) {
    const seq = needSequence();
    await seq.clearHistory();
    const t0 = performance.now();
    let token = null;
    for await (const t of seq.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
      token = t;
      break;
    }
    return { seconds: (performance.now() - t0) / 1000, token };
  },

  async decode({ tokens, n }) {
    const seq = needSequence();
    await seq.clearHistory();
    const ids = [];
    let t0 = 0;
    for await (const t of seq.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
      ids.push(t);
      if (ids.length === 1) t0 = performance.now(); // the clock starts at the first decoded token
      if (ids.length === n + 1) break;
    }
    return { seconds: (performance.now() - t0) / 1000, ids };
  },

  async top({ tokens, k = 2, include = null }) {
    const seq = needSequence();
    await seq.clearHistory();
    const out = await seq.controlledEvaluate(
      tokens.map((t, i) => [t, {
        generateNext: { logits: { filter: { tokens: include?.[i] ?? [], includeTop: k } } },
      }]),
    );
    await seq.clearHistory();
    return {
      top: out.map((o) => [...(o?.next?.logits ?? new Map()).entries()].sort((a, b) => b[1] - a[1])),
    };
  },

  async unload() {
    await unload();
    return {};
  },

  async exit() {
    await unload();
    await llama.dispose();
    return {};
  },
};

const write = (obj) => new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + "\n", resolve));

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    await write({ id: null, ok: false, error: `bad JSON: ${e.message}` });
    continue;
  }
  const op = ops[req.op];
  try {
    if (op === undefined) throw new Error(`unknown op ${req.op}`);
    await write({ id: req.id, ok: true, ...(await op(req)) });
  } catch (e) {
    await write({ id: req.id, ok: false, error: String(e?.stack ?? e) });
  }
  if (req.op === "exit") break;
}
process.exit(0);
