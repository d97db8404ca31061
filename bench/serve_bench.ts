/**
 * `deno task bench:serve`: many streaming clients against the real server on loopback. For 1, 4, 16
 * and 64 concurrent clients (each sending a realistic mix of prompt and output lengths), prints the
 * aggregate output tokens/s, time to first token p50/p99 and inter-token latency p50/p99, as a table,
 * bench/results/serve.json and serve.png. Also the HTTP+SSE overhead: one stream's time per token
 * through the server against the engine's own in-process time per token on the same model, and the time
 * each engine counts between two steps (where the server's JS thread does the tokens' HTTP work).
 *
 * Model: random weights of SmolLM2-135M's shape, quantized to Q8_0 at load, with SmolLM2's tokenizer.
 *
 *   deno task bench:serve [--levels 1,4,16,64] [--requests-per-client 6] [--threads N]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.ts";
import { physicalCoreCount } from "../src/cli/cpu_info.ts";
import { writeBarChart } from "../src/bench/chart.ts";
import { ensureRandomModel, SMOLLM2_135M } from "./random_model.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: {
    levels: { type: "string", default: "1,4,16,64" },
    // Each client sends its requests one after another, so a level ends with a tail in which fewer than
    // its N clients are still streaming: with 2 requests each that tail was about a tenth of the 16-client
    // level's time (16 clients: 65 % of the prefill rate computed with 2 requests each, 73 % with 6).
    "requests-per-client": { type: "string", default: "6" },
    threads: { type: "string" },
    out: { type: "string", default: `${ROOT}bench/results/` },
  },
});
const levels = values.levels!.split(",").map(Number);
const perClient = Number(values["requests-per-client"]);
const threads = values.threads ? Number(values.threads) : physicalCoreCount();

// The model directory, with the real SmolLM2 tokenizer beside the random weights.
const dir = await ensureRandomModel(SMOLLM2_135M, "bf16");
for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
  await Deno.copyFile(`${ROOT}test/fixtures/tokenizer/smollm2/${f}`, `${dir}/${f}`).catch(() => {});
}

const percentile = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const WORDS = "the a river mountain quickly said under over light small garden silver wind morning old city"
  .split(" ");
function prompt(words: number, seed: number): string {
  let s = seed;
  return Array.from(
    { length: words },
    () => WORDS[(s = (s * 1103515245 + 12345) % 2147483648) % WORDS.length],
  )
    .join(" ");
}
/** The mix: short chat turns, medium documents, a few long contexts; short to long answers. */
const MIX = [
  { words: 12, maxTokens: 32 },
  { words: 100, maxTokens: 64 },
  { words: 30, maxTokens: 128 },
  { words: 380, maxTokens: 48 },
];

// --- the server --------------------------------------------------------------------------------------
const xdg = await Deno.makeTempDir({ prefix: "hearth-bench-xdg-" });

/** `main.ts serve` on a free port with `engineThreads`, ready (health 200). */
async function startServer(engineThreads: number): Promise<{ child: Deno.ChildProcess; url: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}main.ts`,
      "serve",
      "--model",
      dir,
      "--port",
      "0",
      "--threads",
      String(engineThreads),
      "--quantize",
      "q8_0",
      "--max-num-seqs",
      "64",
      "--max-model-len",
      "2048",
      "--log-level",
      "WARNING",
      "--no-auth",
    ],
    env: { XDG_CONFIG_HOME: xdg },
    stderr: "piped",
    stdout: "null",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let url = "";
  for (let buf = ""; !url;) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`server exited:\n${buf}`);
    buf += value;
    const m = /listening on (http:\/\/\S+)/.exec(buf);
    if (m) url = m[1];
  }
  (async () => { // keep draining stderr
    while (!(await lines.read()).done) { /* discard */ }
  })();
  while ((await fetch(`${url}/health`).then((r) => r.status, () => 0)) !== 200) {
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, url };
}

async function stopServer(server: { child: Deno.ChildProcess }): Promise<void> {
  server.child.kill("SIGTERM");
  await server.child.status;
}

const server = await startServer(threads);
const url = server.url;

interface RequestResult {
  ttft: number;
  gaps: number[];
  tokens: number;
  promptTokens: number;
}

/**
 * Request i of the mix in round `round` (or the given prompt and length), streamed: its TTFT,
 * inter-token gaps, tokens. Every round has prompts of its own: the server keeps finished prompts'
 * blocks for prefix reuse, so a level that repeated an earlier level's prompts would skip their prefill.
 */
async function streamOne(
  i: number,
  round = 0,
  request: { prompt: string | number[]; maxTokens: number } = {
    prompt: prompt(MIX[i % MIX.length].words, round * 1_000_003 + i + 1),
    maxTokens: MIX[i % MIX.length].maxTokens,
  },
): Promise<RequestResult> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      prompt: request.prompt,
      max_tokens: request.maxTokens,
      ignore_eos: true,
      temperature: 0.7,
      seed: i,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let ttft = 0, last = 0, tokens = 0, promptTokens = 0, buf = "";
  const gaps: number[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let at;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const data = JSON.parse(event.slice(6));
      if (data.usage) tokens = data.usage.completion_tokens, promptTokens = data.usage.prompt_tokens;
      if (!data.choices?.length) continue;
      const now = performance.now();
      if (ttft === 0) ttft = now - t0;
      else gaps.push(now - last);
      last = now;
    }
  }
  return { ttft, gaps, tokens, promptTokens };
}

interface Row {
  clients: number;
  tokensPerSecond: number;
  /** Prompt and output tokens the engine computed per second. */
  computedPerSecond: number;
  promptTokens: number;
  outputTokens: number;
  ttftP50: number;
  ttftP99: number;
  itlP50: number;
  itlP99: number;
}

// HTTP+SSE overhead: one stream through the server against the same request on an engine in this
// process (the other side idle meanwhile), in pairs alternated A B B A so that load from elsewhere on a
// shared machine and any drift fall on both alike; the overhead is the median of the pairs' ratios.
// Beside it, the CPU time of each side's main thread per token (/proc: the server's JS thread, which does
// HTTP, SSE and detokenizing, against this process's, which runs the same engine loop; both also run
// the short decode steps themselves, see src/engine/step_placement.ts): the difference
// is the HTTP side's work, which on a machine whose cores all compute is taken from the decode. Measured on the idle
// server before the load levels (the target) and again after them (a server slowed by what the load
// left behind would show there).
const engine = await Engine.load(dir, { threads, quantize: "q8_0", maxModelLen: 2048 });
const OVERHEAD_PROMPT = Array.from({ length: 40 }, (_, i) => 300 + ((i * 97) % 40000));
const OVERHEAD_TOKENS = 96, OVERHEAD_PAIRS = 12;
const meanGap = (gaps: number[]) => gaps.reduce((a, b) => a + b, 0) / gaps.length;
/** CPU seconds (user + system) thread `tid` of process `pid` has used. */
function threadCpuSeconds(pid: number, tid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // clock ticks: 100 per second on Linux
}
/**
 * One stream through the server, read by a light client: the bytes are only scanned for events, as the
 * client here shares the server's cores (parsing every event's JSON, as streamOne does, costs this
 * process about as much CPU per token as the server's whole HTTP side). Returns ms per token from the
 * first event to the last.
 */
async function viaHttp(serverUrl: string, k: number): Promise<number> {
  const res = await fetch(`${serverUrl}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      prompt: OVERHEAD_PROMPT,
      max_tokens: OVERHEAD_TOKENS,
      ignore_eos: true,
      temperature: 0.7,
      seed: k,
      stream: true,
    }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let first = 0, last = 0, events = 0;
  for await (const bytes of res.body!) {
    const text = decoder.decode(bytes, { stream: true });
    for (let at = text.indexOf("data: {"); at >= 0; at = text.indexOf("data: {", at + 7)) events++;
    last = performance.now();
    if (!first) first = last;
  }
  // About one event per token (ignore_eos: all OVERHEAD_TOKENS come; a token holding part of a character
  // sends nothing until the character is whole), then the one with the finish reason.
  if (events < OVERHEAD_TOKENS / 2) {
    throw new Error(`${OVERHEAD_TOKENS} tokens came as only ${events} events`);
  }
  return (last - first) / (OVERHEAD_TOKENS - 1);
}
async function inProcess(local: Engine, k: number): Promise<number> {
  let last = 0;
  const gaps: number[] = [];
  for await (
    const _ of local.generate(OVERHEAD_PROMPT, {
      maxTokens: OVERHEAD_TOKENS,
      ignoreEos: true,
      temperature: 0.7,
      seed: k,
    })
  ) {
    const now = performance.now();
    if (last) gaps.push(now - last);
    last = now;
  }
  return meanGap(gaps);
}
/** The engine's own between-step time and step count (/metrics on the server, stats() in process). */
async function serverStepCounters(serverUrl: string): Promise<StepCounters> {
  const text = await (await fetch(`${serverUrl}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    between: value("hearth_between_steps_seconds_total"),
    turn: value("hearth_step_turn_seconds_total"),
    turnCpu: value("hearth_step_turn_cpu_seconds_total"),
    steps: value("hearth_steps_total"),
  };
}
function engineStepCounters(local: Engine): StepCounters {
  const s = local.stats();
  return { between: s.betweenStepsSeconds, turn: s.turnSeconds, turnCpu: s.turnCpuSeconds, steps: s.steps };
}
/** Seconds between steps, seconds of the event loop's turns beside steps (both totals), and steps. */
interface StepCounters {
  between: number;
  turn: number;
  /** The JS thread's own CPU seconds in those turns (the rest: other processes, the client, on its core). */
  turnCpu: number;
  steps: number;
}
interface Overhead {
  httpMs: number;
  engineMs: number;
  /**
   * Ms from one step's end to the next one's start, per step, as each engine counts it: the server's
   * JS thread does the tokens' HTTP and SSE work there; the client's own CPU time is not in it.
   */
  serverBetweenMs: number;
  engineBetweenMs: number;
  /**
   * Ms per step of the event loop's turn beside a step begun on the JS thread (the step has one thread
   * fewer meanwhile): the server's HTTP and SSE work of the last tokens runs there.
   */
  serverTurnMs: number;
  engineTurnMs: number;
  /** The same turns by the JS thread's own CPU clock: the server's work in them, not the client's. */
  serverTurnCpuMs: number;
  engineTurnCpuMs: number;
  /**
   * (server − in-process) between-step time, plus their turn time ÷ engine threads (what the turn takes
   * from the step when the other threads go on at full speed; a memory-bound decode loses less), ÷
   * in-process time per token: a bound from above.
   */
  betweenOverhead: number;
  /**
   * The same with the turn counted at what it takes from this step: (1 − r) of its length, r the decode
   * rate of one thread fewer against all of them, measured here (0 with one thread: nothing computes).
   */
  turnCostOverhead: number;
  /** betweenOverhead with the turns' CPU time in place of their wall time (the client's CPU left out). */
  cpuOverhead: number;
  /** Median over the pairs of (server − in-process) / in-process time per token. */
  overhead: number;
  /** Main-thread CPU ms per token: the server's, and this process's running the engine in-process. */
  serverMainCpuMs: number;
  /** This process's main thread per token while it reads the stream (the light client). */
  clientCpuMs: number;
  engineMainCpuMs: number;
}
async function measureOverhead(
  target: { child: Deno.ChildProcess; url: string } = server,
  inProcessEngine: Engine = engine,
  engineThreads = threads,
  fewerRate = fewerThreadsRate,
): Promise<Overhead> {
  const pid = target.child.pid;
  const http: number[] = [], local: number[] = [];
  let serverCpu = 0, clientCpu = 0, localCpu = 0;
  const between = {
    http: { between: 0, turn: 0, turnCpu: 0, steps: 0 },
    local: { between: 0, turn: 0, turnCpu: 0, steps: 0 },
  };
  const counters = (side: "http" | "local") =>
    side === "http" ? serverStepCounters(target.url) : Promise.resolve(engineStepCounters(inProcessEngine));
  const timed = async (side: "http" | "local", k: number) => {
    const b0 = await counters(side);
    const s0 = threadCpuSeconds(pid, pid), c0 = threadCpuSeconds(Deno.pid, Deno.pid);
    const ms = side === "http" ? await viaHttp(target.url, k) : await inProcess(inProcessEngine, k);
    const s1 = threadCpuSeconds(pid, pid), c1 = threadCpuSeconds(Deno.pid, Deno.pid);
    const b1 = await counters(side);
    between[side].between += b1.between - b0.between;
    between[side].turn += b1.turn - b0.turn;
    between[side].turnCpu += b1.turnCpu - b0.turnCpu;
    between[side].steps += b1.steps - b0.steps;
    if (side === "http") serverCpu += s1 - s0, clientCpu += c1 - c0, http.push(ms);
    else localCpu += c1 - c0, local.push(ms);
  };
  for (let k = 0; k < OVERHEAD_PAIRS; k++) {
    for (const side of k % 2 === 0 ? ["http", "local"] as const : ["local", "http"] as const) {
      await timed(side, k);
    }
  }
  const ratios = http.map((h, i) => (h - local[i]) / local[i]);
  const perToken = 1000 / (OVERHEAD_PAIRS * OVERHEAD_TOKENS);
  // Each request's steps: its prefill, then one decode step per further token; the gaps are between them.
  const serverBetweenMs = between.http.between * 1000 / (between.http.steps - OVERHEAD_PAIRS);
  const engineBetweenMs = between.local.between * 1000 / (between.local.steps - OVERHEAD_PAIRS);
  const serverTurnMs = between.http.turn * 1000 / between.http.steps;
  const engineTurnMs = between.local.turn * 1000 / between.local.steps;
  const serverTurnCpuMs = between.http.turnCpu * 1000 / between.http.steps;
  const engineTurnCpuMs = between.local.turnCpu * 1000 / between.local.steps;
  const engineMs = percentile(local, 50);
  /** The server's share of a token's time: the between-step difference plus `turnCost` of its turns. */
  const share = (turnCost: number) => (serverBetweenMs - engineBetweenMs + turnCost) / engineMs;
  return {
    httpMs: percentile(http, 50),
    engineMs,
    serverBetweenMs,
    engineBetweenMs,
    serverTurnMs,
    engineTurnMs,
    serverTurnCpuMs,
    engineTurnCpuMs,
    betweenOverhead: share((serverTurnMs - engineTurnMs) / engineThreads),
    turnCostOverhead: share((serverTurnMs - engineTurnMs) * (1 - fewerRate)),
    cpuOverhead: share((serverTurnCpuMs - engineTurnCpuMs) / engineThreads),
    overhead: percentile(ratios, 50),
    serverMainCpuMs: serverCpu * perToken,
    clientCpuMs: clientCpu * perToken,
    engineMainCpuMs: localCpu * perToken,
  };
}
await inProcess(engine, 99); // warm up
// While the event loop turns beside a step begun on the JS thread, the step runs on one thread fewer: a
// memory-bound decode loses less than 1/threads of its speed then. The rate of one thread fewer against
// all of them, from in-process decodes alternated A B B A (the engine of one thread fewer serves the
// "core to spare" measurement after the levels too).
const spareThreads = threads - 1;
const fewerEngine = spareThreads >= 1
  ? await Engine.load(dir, { threads: spareThreads, quantize: "q8_0", maxModelLen: 2048 })
  : null;
let fewerThreadsRate = 0;
if (fewerEngine) {
  await inProcess(fewerEngine, 99);
  const all: number[] = [], fewer: number[] = [];
  for (let k = 0; k < 6; k++) {
    for (const e of k % 2 === 0 ? [engine, fewerEngine] : [fewerEngine, engine]) {
      (e === engine ? all : fewer).push(await inProcess(e, 200 + k));
    }
  }
  fewerThreadsRate = percentile(all, 50) / percentile(fewer, 50);
}
const rows: Row[] = [];
await streamOne(0); // warm up
const idle = await measureOverhead();
// What the machine can compute: a 512-token prompt's prefill through the server (time to its first
// token, best of 3), in tokens/s, measured before and after the load levels. Batched decode does the
// same matrix products per token as a prefill (and no better on a CPU whose cores are already saturated
// by one prefill), so at that rate a level's prompt + output tokens take at least (prompt + output) /
// rate seconds: the most output tokens/s the mix allows, whatever the batching.
/** n ordinary-word token ids (past the special tokens and raw bytes), distinct per salt: no prefix reuse. */
const promptIds = (n: number, salt: number) =>
  Array.from({ length: n }, (_, i) => 300 + ((i * 7919 + salt) % 40000));
async function measurePrefillRate(round: number): Promise<number> {
  let rate = 0;
  for (let k = 0; k < 3; k++) {
    const long = promptIds(512, k * 31 + round * 17);
    const r = await streamOne(1000 + k, 0, { prompt: long, maxTokens: 1 });
    rate = Math.max(rate, 512 / (r.ttft / 1000));
  }
  return rate;
}
const prefillBefore = await measurePrefillRate(0);
// What batching does for output tokens here: BATCH_SEQS sequences decoding side by side in process
// (prompts and answers of about the mix's mean lengths), counting the tokens emitted once every one of
// them has its first (the decode phase), in tokens/s. With a level's prompts at the prefill rate and its
// output at this rate, the level's time is estimated (not bounded: a decode in a step beside a prompt's
// chunk costs less than in a decode-only step), and the server's rate is put against that estimate: what
// is left after the engine's own batched speed is what the server and its scheduling lose.
const BATCH_SEQS = 16, BATCH_PROMPT = 128, BATCH_TOKENS = 64;
async function measureBatchedDecodeRate(round: number): Promise<number> {
  const firsts: number[] = [];
  const emitted: number[][] = [];
  await Promise.all(Array.from({ length: BATCH_SEQS }, async (_, c) => {
    const ids = promptIds(BATCH_PROMPT, c * 131 + round * 17);
    const times: number[] = [];
    for await (
      const _ of engine.generate(ids, { maxTokens: BATCH_TOKENS, ignoreEos: true, temperature: 0.7, seed: c })
    ) times.push(performance.now());
    firsts.push(times[0]);
    emitted.push(times);
  }));
  const start = Math.max(...firsts), end = Math.max(...emitted.map((t) => t[t.length - 1]));
  const tokens = emitted.reduce((n, t) => n + t.filter((x) => x > start).length, 0);
  return tokens / ((end - start) / 1000);
}
const batchedBefore = await measureBatchedDecodeRate(0);
for (const [level, clients] of levels.entries()) {
  const results: RequestResult[] = [];
  const t0 = performance.now();
  let next = 0;
  // Whole cycles of the mix at every level, so that each level (the single stream too) serves the same
  // proportions of short and long prompts and answers, and the ratios compare like with like.
  const total = Math.ceil(clients * perClient / MIX.length) * MIX.length;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < total) results.push(await streamOne(next++, level + 1));
  }));
  const seconds = (performance.now() - t0) / 1000;
  const tokens = results.reduce((a, r) => a + r.tokens, 0);
  const promptTokens = results.reduce((a, r) => a + r.promptTokens, 0);
  const row = {
    clients,
    tokensPerSecond: tokens / seconds,
    computedPerSecond: (tokens + promptTokens) / seconds,
    promptTokens,
    outputTokens: tokens,
    ttftP50: percentile(results.map((r) => r.ttft), 50),
    ttftP99: percentile(results.map((r) => r.ttft), 99),
    itlP50: percentile(results.flatMap((r) => r.gaps), 50),
    itlP99: percentile(results.flatMap((r) => r.gaps), 99),
  };
  rows.push(row);
  console.error(JSON.stringify(row));
}

const afterLoad = await measureOverhead();

const prefillAfter = await measurePrefillRate(1);
// A shared machine's speed drifts (other tenants): the best of the two is the rate the machine has.
const prefillRate = Math.max(prefillBefore, prefillAfter);
const batchedAfter = await measureBatchedDecodeRate(1);
const batchedRate = Math.max(batchedBefore, batchedAfter);
await engine.close();
await stopServer(server);

// With a core to spare: server and in-process engine on threads - 1, so that the server's JS thread and
// the client no longer take time from the decode's threads, and what is left is the HTTP path itself.
let spare: Overhead | null = null;
if (fewerEngine) {
  const spareServer = await startServer(spareThreads);
  try {
    await viaHttp(spareServer.url, 99);
    // Beside the turn of a 1-thread server nothing computes (rate 0); of a bigger one: not measured.
    spare = await measureOverhead(spareServer, fewerEngine, spareThreads, spareThreads === 1 ? 0 : NaN);
  } finally {
    await fewerEngine.close();
    await stopServer(spareServer);
  }
}
await Deno.remove(xdg, { recursive: true }).catch(() => {});

const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ??
  "?";
const single = rows.find((r) => r.clients === 1)?.tokensPerSecond ?? NaN;
/** The most output tokens/s a row's mix allows at the measured prefill rate (see prefillRate). */
const ceiling = (r: Row) => r.outputTokens / ((r.promptTokens + r.outputTokens) / prefillRate);
/** A level's output tokens/s with its prompts at the prefill rate and its output at the batched decode rate. */
const batchedEstimate = (r: Row) =>
  r.outputTokens / (r.promptTokens / prefillRate + r.outputTokens / batchedRate);
const at16 = rows.find((r) => r.clients === 16);
const table = [
  `SmolLM2-135M shape (random weights, Q8_0 at load); ${cpu}; ${threads} threads; ${perClient} requests per client, rounded up to whole cycles of the ${MIX.length}-request mix`,
  "",
  "| clients | output tok/s (aggregate) | × single | prompt + output tok/s | TTFT p50 (ms) | TTFT p99 (ms) | ITL p50 (ms) | ITL p99 (ms) |",
  "|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...rows.map((r) =>
    `| ${r.clients} | ${r.tokensPerSecond.toFixed(1)} | ${(r.tokensPerSecond / single).toFixed(2)} | ${
      r.computedPerSecond.toFixed(0)
    } | ${r.ttftP50.toFixed(0)} | ${r.ttftP99.toFixed(0)} | ${r.itlP50.toFixed(1)} | ${r.itlP99.toFixed(1)} |`
  ),
  "",
  `prefill rate (512-token prompt through the server, best of 3 before and of 3 after the levels: ${
    prefillBefore.toFixed(0)
  } and ${prefillAfter.toFixed(0)}): ${prefillRate.toFixed(0)} tok/s` +
  (at16
    ? `; at that rate the 16-client mix (${at16.promptTokens} prompt + ${at16.outputTokens} output tokens) ` +
      `allows at most ${ceiling(at16).toFixed(0)} output tok/s = ${
        (ceiling(at16) / single).toFixed(2)
      }× single ` +
      `(measured: ${(at16.tokensPerSecond / single).toFixed(2)}×, computing ${
        (at16.computedPerSecond / prefillRate * 100).toFixed(0)
      } % of the prefill rate)`
    : ""),
  `batched decode rate (${BATCH_SEQS} sequences side by side in process, ${BATCH_PROMPT}-token prompts, ${BATCH_TOKENS} tokens each, best of one before and one after the levels: ${
    batchedBefore.toFixed(0)
  } and ${batchedAfter.toFixed(0)}): ${batchedRate.toFixed(0)} tok/s` +
  (at16
    ? ` = ${
      (batchedRate * idle.engineMs / 1000).toFixed(2)
    }× one decode in process; with the 16-client mix's prompts at the prefill rate and its ` +
      `output at this rate: ${batchedEstimate(at16).toFixed(0)} output tok/s = ${
        (batchedEstimate(at16) / single).toFixed(2)
      }× single (an estimate, not a bound; the server reached ${
        (at16.tokensPerSecond / batchedEstimate(at16) * 100).toFixed(0)
      } % of it)`
    : ""),
  "",
  `HTTP+SSE overhead per decoded token, idle server: ${idle.httpMs.toFixed(2)} ms through the server vs ${
    idle.engineMs.toFixed(2)
  } ms in-process (medians), median of ${OVERHEAD_PAIRS} paired ratios ${
    (idle.overhead * 100).toFixed(1)
  } % (target < 2 %)`,
  `  between two steps (each engine's own count): server ${idle.serverBetweenMs.toFixed(3)} ms, in-process ${
    idle.engineBetweenMs.toFixed(3)
  } ms; the event loop's turn beside each step (its HTTP + SSE + detokenizing, while the step has one of ${threads} threads fewer): server ${
    idle.serverTurnMs.toFixed(3)
  } ms, in-process ${idle.engineTurnMs.toFixed(3)} ms: the server adds ${
    (idle.betweenOverhead * 100).toFixed(1)
  } % to a token's time at most (the between-step difference + the turn difference ÷ ${threads}; the turns' wall time, the client's CPU on the JS thread's core included); ${
    (idle.turnCostOverhead * 100).toFixed(1)
  } % with the turn counted at what one thread fewer loses (decode on ${spareThreads} threads at ${
    (fewerThreadsRate * 100).toFixed(0)
  } % of the speed of ${threads}: the turn difference × ${(1 - fewerThreadsRate).toFixed(2)}) (target < 2 %)`,
  `  the turns by the JS thread's own CPU clock (its work in them; the rest of their wall time other processes, ` +
  `the reading client first, held its core): server ${idle.serverTurnCpuMs.toFixed(3)} ms, in-process ${
    idle.engineTurnCpuMs.toFixed(3)
  } ms: the server's own HTTP + SSE work adds ${
    (idle.cpuOverhead * 100).toFixed(1)
  } % to a token's time at most (the between-step difference + the turns' CPU difference ÷ ${threads}) (target < 2 %)`,
  `  main-thread CPU per token: server ${idle.serverMainCpuMs.toFixed(3)} ms, in-process engine ${
    idle.engineMainCpuMs.toFixed(3)
  } ms: the server's HTTP + SSE + detokenizing take ${
    ((idle.serverMainCpuMs - idle.engineMainCpuMs) / idle.engineMs * 100).toFixed(1)
  } % of a decode's time (the difference; the client reading the stream: ${idle.clientCpuMs.toFixed(3)} ms)`,
  `the same after the load levels: ${afterLoad.httpMs.toFixed(2)} ms vs ${
    afterLoad.engineMs.toFixed(2)
  } ms, paired ${(afterLoad.overhead * 100).toFixed(1)} %; between steps ${
    afterLoad.serverBetweenMs.toFixed(3)
  } vs ${afterLoad.engineBetweenMs.toFixed(3)} ms, turn ${afterLoad.serverTurnMs.toFixed(3)} vs ${
    afterLoad.engineTurnMs.toFixed(3)
  } ms (${(afterLoad.betweenOverhead * 100).toFixed(1)} % at most, ${
    (afterLoad.turnCostOverhead * 100).toFixed(1)
  } % at the measured rate), by the turns' CPU clock ${afterLoad.serverTurnCpuMs.toFixed(3)} vs ${
    afterLoad.engineTurnCpuMs.toFixed(3)
  } ms (${(afterLoad.cpuOverhead * 100).toFixed(1)} %); main-thread CPU ${
    afterLoad.serverMainCpuMs.toFixed(3)
  } vs ${afterLoad.engineMainCpuMs.toFixed(3)} ms per token`,
  spare
    ? `with a core to spare (engine threads ${spareThreads} on both sides): ${
      spare.httpMs.toFixed(2)
    } ms vs ${spare.engineMs.toFixed(2)} ms, paired ${(spare.overhead * 100).toFixed(1)} %; between steps ${
      spare.serverBetweenMs.toFixed(3)
    } vs ${spare.engineBetweenMs.toFixed(3)} ms, turn ${spare.serverTurnMs.toFixed(3)} vs ${
      spare.engineTurnMs.toFixed(3)
    } ms (${(spare.betweenOverhead * 100).toFixed(1)} %), by the turns' CPU clock ${
      spare.serverTurnCpuMs.toFixed(3)
    } vs ${spare.engineTurnCpuMs.toFixed(3)} ms (${(spare.cpuOverhead * 100).toFixed(1)} %) (target < 2 %)`
    : "with a core to spare: not measured (1 thread)",
  `aggregate at 16 clients vs 1: ${
    ((rows.find((r) => r.clients === 16)?.tokensPerSecond ?? NaN) / single).toFixed(2)
  }× (target ≥ 4×)`,
];
console.log(table.join("\n"));
await Deno.mkdir(values.out!, { recursive: true });
await Deno.writeTextFile(
  `${values.out}serve.json`,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      cpu,
      threads,
      perClient,
      rows,
      prefillRate,
      prefillBefore,
      prefillAfter,
      batchedRate,
      batchedBefore,
      batchedAfter,
      fewerThreadsRate,
      ...idle,
      afterLoad,
      spare,
    },
    null,
    2,
  ),
);
await writeBarChart(`${values.out}serve.png`, {
  title: `hearth server: aggregate output tokens/s by concurrent streams (${threads} threads)`,
  yLabel: "tokens/s",
  groups: rows.map((r) => `${r.clients} client${r.clients > 1 ? "s" : ""}`),
  series: [{ name: "output tok/s", values: rows.map((r) => r.tokensPerSecond) }],
  annotations: [rows.map((r) => `${(r.tokensPerSecond / single).toFixed(1)}x`)],
});
console.error(`wrote ${values.out}serve.json and serve.png`);
