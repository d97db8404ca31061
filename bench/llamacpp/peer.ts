/**
 * The llama.cpp peer from Deno: starts `node bench/llamacpp/peer.mjs` (node-llama-cpp, prebuilt
 * llama.cpp, CPU only) as a subprocess and speaks JSON lines with it. The benchmark and the
 * real-model tier use it.
 *
 * {@link fetchLlamaCpp} installs node-llama-cpp into the cache (scripts/fetch_llamacpp.sh, npm);
 * {@link LlamaCppPeer.start} throws a {@link PeerUnavailable} saying why when that or Node fails.
 *
 * @module
 */
const ROOT = new URL("../../", import.meta.url).pathname;

/** The peer could not be installed or started; `message` says which command failed and how. */
export class PeerUnavailable extends Error {
  override name = "PeerUnavailable";
}

/** What `info` answers. */
export interface PeerInfo {
  /** node-llama-cpp's version. */
  version: string;
  llamaCpp: { repo: string; release: string };
  systemInfo: string;
  cpuMathCores: number;
  gpu: string | false;
  buildType: string;
}

/** What `load` answers: the context as llama.cpp made it. */
export interface PeerContext {
  contextSize: number;
  batchSize: number;
  flashAttention: boolean | "auto";
  threads: number;
}

/** Runs scripts/fetch_llamacpp.sh (idempotent) and returns the install directory. */
export async function fetchLlamaCpp(): Promise<string> {
  const cmd = `bash ${ROOT}scripts/fetch_llamacpp.sh`;
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("bash", { args: [`${ROOT}scripts/fetch_llamacpp.sh`], stderr: "piped" })
      .output();
  } catch (e) {
    throw new PeerUnavailable(`${cmd}: ${e}`);
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-15).join("\n");
    throw new PeerUnavailable(`${cmd} exited ${out.code}:\n${err}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** Splits decoded text into lines (without their "\n"). */
function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, out) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) out.enqueue(line);
    },
    flush(out) {
      if (rest !== "") out.enqueue(rest);
    },
  });
}

/** One node-llama-cpp process holding at most one model. */
export class LlamaCppPeer {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #next = 1;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter()).getReader();
  }

  /**
   * Installs node-llama-cpp if needed and starts the peer. llama.cpp's log goes to this process's
   * stderr when `inheritStderr` (default false: discarded).
   */
  static async start(opts: { inheritStderr?: boolean } = {}): Promise<LlamaCppPeer> {
    const dir = await fetchLlamaCpp();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("node", {
        args: [`${ROOT}bench/llamacpp/peer.mjs`, dir],
        stdin: "piped",
        stdout: "piped",
        stderr: opts.inheritStderr ? "inherit" : "null",
      }).spawn();
    } catch (e) {
      throw new PeerUnavailable(`node ${ROOT}bench/llamacpp/peer.mjs: ${e}`);
    }
    const peer = new LlamaCppPeer(child);
    try {
      await peer.info();
    } catch (e) {
      await peer.close().catch(() => {});
      throw new PeerUnavailable(`node-llama-cpp did not start: ${(e as Error).message}`);
    }
    return peer;
  }

  /** Sends one request and waits for its answer (requests are answered in order). */
  request<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const run = async (): Promise<T> => {
      const id = this.#next++;
      await this.#stdin.write(new TextEncoder().encode(JSON.stringify({ id, op, ...args }) + "\n"));
      const { value, done } = await this.#lines.read();
      if (done) throw new Error(`llama.cpp peer exited during ${op}`);
      const res = JSON.parse(value);
      if (res.id !== id) throw new Error(`llama.cpp peer answered ${res.id} to ${id}`);
      if (!res.ok) throw new Error(`llama.cpp peer ${op}: ${res.error}`);
      const { id: _id, ok: _ok, ...answer } = res;
      return answer as T;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  info(): Promise<PeerInfo> {
    return this.request("info");
  }

  /** Loads a GGUF file (replacing the one loaded) into a context of `contextSize` tokens. */
  load(
    path: string,
    opts: { threads: number; contextSize?: number; batchSize?: number },
  ): Promise<PeerContext> {
    return this.request("load", { path, ...opts });
  }

  /** llama.cpp's tokenization (special-token text parsed as special tokens when `special`); no BOS. */
  async tokenize(
    texts: string[],
    special = true,
  ): Promise<{ ids: number[][]; bos: number | null; prependBos: boolean | null }> {
    return await this.request("tokenize", { texts, special });
  }

  /** Seconds to prefill `tokens` from an empty context and pick one token greedily. */
  async firstToken(tokens: number[]): Promise<{ seconds: number; token: number }> {
    return await this.request("firstToken", { tokens });
  }

  /** Seconds for `n` greedy tokens after the first one that follows `tokens` (EOS ignored). */
  async decode(tokens: number[], n: number): Promise<{ seconds: number; ids: number[] }> {
    return await this.request("decode", { tokens, n });
  }

  /**
   * Teacher forcing: for each position of `tokens` (one sequence from an empty context), the `k`
   * largest next-token logits and those of the ids in `include[position]`, as [id, logit], largest first.
   */
  async top(tokens: number[], k = 2, include?: number[][]): Promise<[number, number][][]> {
    return (await this.request<{ top: [number, number][][] }>("top", { tokens, k, include })).top;
  }

  /** Frees the model and ends the process. */
  async close(): Promise<void> {
    try {
      await this.request("exit");
    } catch { /* already gone */ }
    try {
      await this.#stdin.close();
    } catch { /* closed */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited */ }
    }, 5000);
    try {
      await this.#child.status;
    } finally {
      clearTimeout(timer);
      this.#lines.releaseLock();
    }
  }
}
