/**
 * The engine: a loaded model, its native context, and the loop that turns `generate` calls into
 * batched forward steps. Every step carries all running sequences (decode) plus prompt chunks of new
 * ones (prefill) in one native call, so concurrent requests share each pass over the weights.
 *
 * @module
 */
import type { DType, GenerationDefaults, ModelDescription, WeightDType } from "../model/description.ts";
import {
  KV_CACHE_ELEMENT_BYTES,
  type KvCacheDType,
  LogitsMode,
  NativeContext,
  NativeModel,
  StepBatch,
} from "../native/hearth.ts";
import {
  defaultDtype,
  defaultGpuKvCacheBytes,
  type Device,
  deviceName,
  resolveDevice,
} from "../native/device.ts";
import { KvBlockAllocator } from "./kv_allocator.ts";
import { Scheduler } from "./scheduler.ts";
import { Sequence } from "./sequence.ts";
import {
  DEFAULT_GENERATE_PARAMS,
  EngineError,
  type EngineInfo,
  type EngineStats,
  type GeneratedToken,
  type GenerateParams,
  type TextGenerator,
} from "./types.ts";
import { setImmediate } from "node:timers";
import { threadCpuClock } from "../native/thread_clock.ts";
import { DEFAULT_PREFILL_CHUNK_MS, PrefillPacer } from "./prefill_pacer.ts";
import { StepPlacement } from "./step_placement.ts";
import { availableMemory, placeWeights, type WeightsInMemory } from "./weight_placement.ts";

/** How to size the engine. Everything has a default. */
export interface EngineOptions {
  /**
   * Where to run: "auto" (default: cuda:0 when the CUDA library loads and a device is there, else the
   * CPU), "cpu", "cuda" or "cuda:N".
   */
  device?: string | Device;
  /** Weight dtype to compute with; "auto" keeps what the files store (on a GPU: bf16, or f16). */
  dtype?: DType | "auto";
  /**
   * Copy the weights used as stored into memory backed by huge pages (true) or read them from the
   * mapped files (false); "auto" (default) copies them when they take at most half of the memory
   * available at load (src/engine/weight_placement.ts). The copy decodes float models about 10 %
   * faster on the CPU; the mapping loads at once and leaves the pages to the page cache. Quantized
   * weights the kernels repack are in memory either way.
   */
  weightsInMemory?: WeightsInMemory;
  /** Quantize the weight matrices at load (q4_k falls back to q4_0 where rows are no multiple of 256). */
  quantize?: "q8_0" | "q4_0" | "q4_k";
  /** Worker threads (default: physical cores, as the CLI computes; 1 here). */
  threads?: number;
  /** Longest context per sequence (default: the model's, limited by the KV cache). */
  maxModelLen?: number;
  /** Token slots in the KV cache (default: what `kvCacheBytes` holds). */
  kvCacheTokens?: number;
  /**
   * Bytes for the KV cache when kvCacheTokens is not given (default: a quarter of the memory available
   * at load, at most 4 GiB; on a GPU a quarter of its free memory, at most 8 GiB). On the CPU pages are
   * touched only as blocks are first used, so a large cache costs memory only when many long sequences
   * fill it.
   */
  kvCacheBytes?: number;
  /**
   * Tokens per KV block: the unit of allocation and of prefix sharing. Default 64 on the CPU, 16 on
   * CUDA. A block keeps each kv head's rows contiguous, and a decode's attention reads one such run per
   * block: on the CPU a longer run keeps the hardware prefetchers streaming (16 sequences decoding at
   * context 240: about +10 % tokens/s at 64 against 16), while prefix sharing then starts at 64 tokens.
   */
  kvBlockSize?: number;
  /**
   * Element type of the KV cache. "auto" (default): float16 for quantized weights on the CPU (half the
   * cache's memory and of the bytes each decoded token reads, the rounding llama.cpp's default cache
   * has), float32 otherwise, so float checkpoints compute exactly as transformers does in float32.
   */
  kvCacheDtype?: "auto" | KvCacheDType;
  /** Most tokens in one step (default 512). */
  maxBatchTokens?: number;
  /**
   * While sequences are decoding, a step's prompt tokens are sized to take about this many ms (the wait
   * they add to those sequences' next token) at the time per token of recent big steps (default
   * {@link DEFAULT_PREFILL_CHUNK_MS}; 0: only maxBatchTokens limits them). See prefill_pacer.ts.
   */
  prefillChunkMs?: number;
  /** Most sequences in one step (default 64). */
  maxBatchSeqs?: number;
  /** Share the KV blocks of identical prompt prefixes between requests (default true). */
  prefixCaching?: boolean;
  /** Most requests waiting for a place in the batch; past it generate() fails with "overloaded". */
  maxWaiting?: number;
  /** Called with warnings worth showing a person (e.g. a context cut to fit the cache). */
  warn?: (message: string) => void;
}

function randomSeed(): bigint {
  const b = new BigUint64Array(1);
  crypto.getRandomValues(b);
  return b[0];
}

/** Maps generation_config.json fields onto GenerateParams names. */
export function defaultsFromGeneration(g: GenerationDefaults): Partial<GenerateParams> {
  const d: Partial<GenerateParams> = {};
  // do_sample false means greedy whatever temperature says, as transformers does.
  if (g.doSample === false) d.temperature = 0;
  else if (g.temperature !== undefined) d.temperature = g.temperature;
  if (g.topP !== undefined) d.topP = g.topP;
  if (g.topK !== undefined) d.topK = g.topK;
  if (g.minP !== undefined) d.minP = g.minP;
  if (g.repetitionPenalty !== undefined) d.repetitionPenalty = g.repetitionPenalty;
  return d;
}

/**
 * The KV cache element type for an `asked` setting: "auto" is float16 for quantized weights on the CPU
 * (the CUDA backend keeps float32), float32 otherwise.
 */
export function resolveKvCacheDtype(
  asked: "auto" | KvCacheDType,
  device: Device,
  weights: WeightDType,
): KvCacheDType {
  if (asked !== "auto") return asked;
  const quantized = weights !== "f32" && weights !== "f16" && weights !== "bf16";
  return device.kind === "cpu" && quantized ? "float16" : "float32";
}

/** The KV cache's byte budget when none is given: a quarter of the memory available now, at most 4 GiB. */
export function defaultKvCacheBytes(): number {
  const available = availableMemory() ?? 4 * 2 ** 30; /* not reported on this system: assume plenty */
  return Math.max(64 * 2 ** 20, Math.min(4 * 2 ** 30, Math.floor(available / 4)));
}

/** A model ready to generate. Implements the server's {@link TextGenerator}. */
export class Engine implements TextGenerator {
  readonly info: EngineInfo;
  readonly #model: NativeModel;
  readonly #ctx: NativeContext;
  readonly #batch: StepBatch;
  readonly #scheduler: Scheduler;
  #loop: Promise<void> | null = null;
  #looping = false;
  #wake: (() => void) | null = null;
  #closed = false;
  #steps = 0;
  readonly #placement = new StepPlacement();
  readonly #pacer: PrefillPacer;
  #generated = 0;
  /** Time in forward steps, and from one step's end to the next one's start while the loop ran on. */
  #stepMs = 0;
  #betweenStepsMs = 0;
  #turnMs = 0;
  /** The JS thread's own CPU time in those turns (the rest of #turnMs: other processes on its core). */
  #turnCpuMs = 0;

  readonly #maxWaiting: number;

  private constructor(
    info: EngineInfo,
    model: NativeModel,
    ctx: NativeContext,
    scheduler: Scheduler,
    maxWaiting: number,
    pacer: PrefillPacer,
  ) {
    this.info = info;
    this.#maxWaiting = maxWaiting;
    this.#pacer = pacer;
    this.#model = model;
    this.#ctx = ctx;
    this.#scheduler = scheduler;
    this.#batch = new StepBatch(ctx.options, info.vocabSize);
  }

  /** Loads a model (a Hugging Face directory or a .gguf file) into a ready engine. */
  static async load(modelPath: string, opts: EngineOptions = {}): Promise<Engine> {
    const { describeModelPath } = await import("../model/describe.ts");
    const { description, generation } = await describeModelPath(modelPath, { tokenizer: false });
    return await Engine.fromDescription(description, generation, modelPath, opts);
  }

  /** Builds an engine from an already-parsed description (GGUF and tests use this). */
  static async fromDescription(
    desc: ModelDescription,
    generation: GenerationDefaults,
    modelPath: string,
    opts: EngineOptions = {},
  ): Promise<Engine> {
    const c = desc.config;
    const where = await resolveDevice(opts.device ?? "auto");
    const blockSize = opts.kvBlockSize ?? (where.cuda ? 16 : 64);
    if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 1024) {
      throw new RangeError(`the KV block size must be an integer from 1 to 1024 tokens, not ${blockSize}`);
    }
    const asked = opts.quantize ?? opts.dtype ?? "auto";
    const weights = asked === "auto" ? defaultDtype(where, desc.storedDtype) : asked;
    const kvDtype = resolveKvCacheDtype(
      opts.kvCacheDtype ?? "auto",
      where.device,
      weights === "auto" ? desc.storedDtype : weights,
    );
    const bytesPerToken = 2 * c.nLayers * c.nKvHeads * c.headDim * KV_CACHE_ELEMENT_BYTES[kvDtype];
    let maxContext = Math.min(opts.maxModelLen ?? c.maxSeqLen, c.maxSeqLen);
    const maxBatchTokens = opts.maxBatchTokens ?? 512;
    const pacer = new PrefillPacer(opts.prefillChunkMs ?? DEFAULT_PREFILL_CHUNK_MS); // before anything is allocated
    const maxBatchSeqs = Math.min(opts.maxBatchSeqs ?? 64, maxBatchTokens);
    // By default: what the byte budget holds, but no more than every sequence at full length needs.
    const kvTokens = opts.kvCacheTokens ??
      Math.max(
        blockSize,
        Math.min(
          Math.floor(
            (opts.kvCacheBytes ?? (where.cuda ? defaultGpuKvCacheBytes(where.cuda) : defaultKvCacheBytes())) /
              bytesPerToken,
          ),
          maxContext * maxBatchSeqs,
        ),
      );
    if (opts.maxModelLen !== undefined && opts.maxModelLen > c.maxSeqLen) {
      opts.warn?.(
        `max-model-len ${opts.maxModelLen} is beyond the model's ${c.maxSeqLen}; using ${c.maxSeqLen}`,
      );
    }
    const numBlocks = Math.max(1, Math.floor(kvTokens / blockSize));
    if (numBlocks * blockSize < maxContext) {
      opts.warn?.(
        `the KV cache holds ${numBlocks * blockSize} tokens, less than the context of ${maxContext}: ` +
          `serving a context of ${numBlocks * blockSize}`,
      );
      maxContext = numBlocks * blockSize;
    }
    const placement = placeWeights(
      opts.weightsInMemory ?? "auto",
      desc.tensors.reduce((n, t) => n + t.nbytes, 0),
      availableMemory(),
      where.device.kind === "cuda",
    );
    const model = await NativeModel.load(
      { ...desc, config: { ...c, maxSeqLen: maxContext } },
      weights,
      where.device,
      { inMemory: placement.inMemory },
    );
    let ctx: NativeContext;
    try {
      ctx = await NativeContext.create(model, {
        threads: opts.threads ?? 1,
        kvBlockSize: blockSize,
        kvNumBlocks: numBlocks,
        maxBatchTokens,
        maxBatchSeqs,
        maxBlocksPerSeq: Math.ceil(maxContext / blockSize),
        kvDtype,
      });
    } catch (e) {
      model.free();
      throw e;
    }
    const eos = [...new Set([...c.eosTokenIds, ...(generation.eosTokenIds ?? [])])];
    const info: EngineInfo = {
      modelPath,
      architecture: c.architecture,
      maxContext,
      vocabSize: c.vocabSize,
      eosTokenIds: eos,
      bosTokenId: generation.bosTokenId ?? c.bosTokenId,
      defaults: defaultsFromGeneration(generation),
      dtype: model.dtype,
      kvCacheDtype: kvDtype,
      kvBlockSize: blockSize,
      device: deviceName(where.device) + (where.cuda ? ` (${where.cuda.name})` : ""),
      weights: placement.reason,
    };
    const scheduler = new Scheduler(new KvBlockAllocator(numBlocks, blockSize), {
      maxBatchTokens,
      maxBatchSeqs,
      prefixCaching: opts.prefixCaching ?? true,
      pacer,
    });
    return new Engine(info, model, ctx, scheduler, opts.maxWaiting ?? 1024, pacer);
  }

  /** Bytes of the KV cache and of weights held in memory (converted) and mapped. */
  memory(): { kvCache: number; ownedWeights: number; mappedFiles: number } {
    return {
      kvCache: this.#ctx.kvBytes(),
      ownedWeights: this.#model.ownedBytes(),
      mappedFiles: this.#model.mappedBytes(),
    };
  }

  /** KV blocks free now (all of them when idle: nothing leaks). */
  get freeKvBlocks(): number {
    return this.#scheduler.allocator.freeBlocks;
  }

  /** Preemptions so far. */
  get preemptions(): number {
    return this.#scheduler.preemptions;
  }

  /** Counters for logs and /metrics. */
  stats(): EngineStats {
    const s = this.#scheduler;
    return {
      waiting: s.waiting.length,
      running: s.running.length,
      kvBlocksTotal: s.allocator.numBlocks,
      kvBlocksFree: s.allocator.freeBlocks,
      preemptions: s.preemptions,
      promptTokens: s.admittedTokens,
      prefixHitTokens: s.prefixHitTokens,
      steps: this.#steps,
      generatedTokens: this.#generated,
      stepSeconds: this.#stepMs / 1000,
      betweenStepsSeconds: this.#betweenStepsMs / 1000,
      turnSeconds: this.#turnMs / 1000,
      turnCpuSeconds: threadCpuClock ? this.#turnCpuMs / 1000 : NaN,
      prefillMsPerToken: this.#pacer.msPerToken,
      pacedSteps: s.pacedSteps,
    };
  }

  /** Prompt tokens admitted, and how many of them were served from shared prefix blocks. */
  get prefixStats(): { admittedTokens: number; hitTokens: number; hitRate: number } {
    const { admittedTokens, prefixHitTokens } = this.#scheduler;
    return {
      admittedTokens,
      hitTokens: prefixHitTokens,
      hitRate: admittedTokens === 0 ? 0 : prefixHitTokens / admittedTokens,
    };
  }

  #resolveParams(
    prompt: number[],
    params: Partial<GenerateParams>,
  ): { p: GenerateParams; maxTokens: number } {
    const p: GenerateParams = { ...DEFAULT_GENERATE_PARAMS, ...this.info.defaults };
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined) (p as unknown as Record<string, unknown>)[k] = v;
    }
    const bad = (param: string, why: string) => new EngineError(`${param} ${why}`, "invalid_request", param);
    if (!Array.isArray(prompt) || prompt.length === 0) throw bad("prompt", "must have at least one token");
    for (const t of prompt) {
      if (!Number.isInteger(t) || t < 0 || t >= this.info.vocabSize) {
        throw bad("prompt", `has token id ${t}, outside [0, ${this.info.vocabSize})`);
      }
    }
    if (prompt.length >= this.info.maxContext) {
      throw new EngineError(
        `the prompt has ${prompt.length} tokens, but the context is ${this.info.maxContext} tokens ` +
          `(at least one must be left to generate)`,
        "context_length_exceeded",
        "messages",
      );
    }
    const num = (name: keyof GenerateParams, ok: (v: number) => boolean, why: string) => {
      const v = p[name] as number;
      if (typeof v !== "number" || Number.isNaN(v) || !ok(v)) throw bad(name, why);
    };
    num("maxTokens", (v) => Number.isInteger(v) && v >= 1, "must be an integer >= 1");
    num("temperature", (v) => v >= 0, "must be >= 0");
    num("topP", (v) => v > 0 && v <= 1, "must be in (0, 1]");
    num("topK", (v) => Number.isInteger(v) && v >= 0, "must be an integer >= 0 (0 = off)");
    num("minP", (v) => v >= 0 && v <= 1, "must be in [0, 1]");
    num("repetitionPenalty", (v) => v > 0, "must be > 0");
    num("presencePenalty", (v) => v >= -2 && v <= 2, "must be in [-2, 2]");
    num("frequencyPenalty", (v) => v >= -2 && v <= 2, "must be in [-2, 2]");
    num("noRepeatNgramSize", (v) => Number.isInteger(v) && v >= 0, "must be an integer >= 0");
    num("minTokens", (v) => Number.isInteger(v) && v >= 0, "must be an integer >= 0");
    const top = p.topLogprobs ?? 0;
    if (!Number.isInteger(top) || top < 0 || top > 20) {
      throw bad("topLogprobs", "must be an integer in [0, 20]");
    }
    const maxTokens = Math.min(p.maxTokens, this.info.maxContext - prompt.length);
    return { p, maxTokens };
  }

  /**
   * Generates tokens after `prompt`. Yields each token as it is decoded; the last one carries the
   * finish reason. Breaking out of the loop or aborting `signal` cancels the sequence.
   */
  async *generate(
    prompt: number[],
    params: Partial<GenerateParams> = {},
    signal?: AbortSignal,
  ): AsyncGenerator<GeneratedToken> {
    if (this.#closed) throw new EngineError("the engine is shut down", "internal");
    const { p, maxTokens } = this.#resolveParams(prompt, params);
    if (this.#scheduler.waiting.length >= this.#maxWaiting) {
      throw new EngineError(
        `the server is at capacity (${this.#scheduler.waiting.length} requests waiting); try again shortly`,
        "overloaded",
      );
    }
    const seed = p.seed === undefined ? randomSeed() : BigInt.asUintN(64, BigInt(p.seed));
    const stops = [...new Set([...(p.ignoreEos ? [] : this.info.eosTokenIds), ...p.stopTokenIds])];
    const seq = new Sequence(prompt, p, seed, stops, maxTokens);
    const onAbort = () => {
      seq.cancelled = true;
      seq.push(new DOMException("generation aborted", "AbortError"));
    };
    if (signal?.aborted) return;
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#scheduler.add(seq);
    this.#kick();
    try {
      while (true) {
        const item = await seq.next();
        if (seq.cancelled) return; // aborted while this token was queued: the caller wants no more
        if (item instanceof Error) {
          if (item.name === "AbortError") return;
          throw item;
        }
        yield item;
        if (item.finishReason) return;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (!seq.done) {
        seq.cancelled = true; // the loop frees its blocks before the next step
        this.#kick();
      }
    }
  }

  #kick(): void {
    if (this.#wake) {
      this.#wake();
      this.#wake = null;
    }
    if (!this.#looping) {
      this.#looping = true;
      this.#loop = this.#run();
    }
  }

  /** The step loop: runs while there is work, then waits to be kicked. */
  async #run(): Promise<void> {
    // #looping is cleared in the same synchronous turn as the loop's decision to stop, so no kick can
    // fall between the two (a .finally() on the promise would clear it a few microtasks later).
    /** When the last step ended, while the loop has gone on to the next without waiting (else 0). */
    let stepEnd = 0;
    try {
      while (!this.#closed) {
        const plan = this.#scheduler.schedule();
        if (plan.length === 0) {
          if (!this.#scheduler.busy) return;
          // Sequences are waiting for blocks that running ones hold; nothing can run: wait for a change.
          stepEnd = 0;
          await new Promise<void>((resolve) => (this.#wake = resolve));
          continue;
        }
        const batch = this.#batch;
        batch.clear(LogitsMode.none);
        for (const slice of plan) {
          const s = slice.seq;
          batch.addSequence(
            s.tokens.slice(slice.start, slice.start + slice.count),
            slice.start,
            s.blocks,
            slice.sample ? s.sampling : null,
          );
        }
        try {
          const t0 = performance.now();
          if (stepEnd) this.#betweenStepsMs += t0 - stepEnd;
          if (this.#placement.onJsThread(batch.nTokens)) {
            // A short step on this thread (see step_placement.ts), begun before the event loop's turn
            // (I/O and timers: the last step's tokens go to their consumers, through HTTP and SSE in the
            // server; new requests, disconnects) and joined after it, so that the turn's work runs beside
            // the step instead of between two steps. setImmediate runs after the I/O poll; a resolved
            // promise would not let it run, and a nested setTimeout(0) waits milliseconds.
            this.#ctx.stepBegin(batch);
            const away = performance.now();
            const awayCpu = threadCpuClock?.() ?? 0;
            try {
              await new Promise<void>((resolve) => setImmediate(resolve));
            } finally {
              this.#turnMs += performance.now() - away;
              if (threadCpuClock) this.#turnCpuMs += threadCpuClock() - awayCpu;
              this.#ctx.stepJoin();
            }
          } else {
            await this.#ctx.step(batch);
          }
          stepEnd = performance.now();
          this.#stepMs += stepEnd - t0;
          this.#placement.record(batch.nTokens, stepEnd - t0);
          this.#pacer.record(batch.nTokens, stepEnd - t0);
          this.#steps++;
        } catch (e) {
          stepEnd = 0;
          const err = new EngineError(`forward step failed: ${(e as Error).message}`, "internal");
          for (const slice of plan) {
            slice.seq.done = true;
            slice.seq.push(err);
          }
          continue;
        }
        plan.forEach((slice, i) => {
          const s = slice.seq;
          s.computed += slice.count;
          this.#scheduler.publish(s);
          if (!slice.sample || s.cancelled || s.done) return;
          const id = batch.outTokens[i];
          s.tokens.push(id);
          this.#generated++;
          const isStop = s.stopIds.has(id);
          const finishReason = isStop ? "stop" : s.generated >= s.maxTokens ? "length" : null;
          const item: GeneratedToken = { id, finishReason, isStop };
          if (s.wantLogprobs) {
            item.logprob = batch.outLogprobs[i];
            if (s.topLogprobs > 0) {
              item.topLogprobs = [];
              for (let k = 0; k < s.topLogprobs; k++) {
                item.topLogprobs.push({
                  id: batch.outTopIds[i * 20 + k],
                  logprob: batch.outTopLogprobs[i * 20 + k],
                });
              }
            }
          }
          if (finishReason) s.done = true;
          s.push(item);
        });
      }
    } finally {
      this.#looping = false;
    }
  }

  /** Stops the loop after the step in flight, fails pending generations and frees native memory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    await this.#loop;
    const err = new EngineError("the engine is shut down", "internal");
    for (const s of [...this.#scheduler.waiting, ...this.#scheduler.running]) {
      s.done = true;
      s.push(err);
    }
    this.#scheduler.reap();
    this.#ctx.free();
    this.#model.free();
  }
}
